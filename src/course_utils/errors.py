"""The one base class of the errors a learner can cause and fix."""


class CourseError(ValueError):
    """A learner's mistake or an unusable setting; the (Vietnamese) message says what to do.

    The command line (python -m course_utils.lab) prints the message and exits with status 2, without a traceback.
    """
