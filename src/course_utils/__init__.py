"""course_utils: the helper package of the course "Tinh chỉnh LLM" (LoRA, QLoRA), in d2l's spirit.

Modules: profiles (run settings), tiny (the offline tiny model), models (loading, generation),
data (the Vietnamese dataset and formats), train (the QLoRA trainer), memory (memory plans),
configs (reference configs and parameter counts), and one module per mechanism a chapter builds.
"""

__version__ = "0.1.0"
