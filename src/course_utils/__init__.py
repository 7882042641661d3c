"""course_utils: the helper package of the course "Tinh chỉnh LLM" (LoRA, QLoRA), in d2l's spirit.

Modules: profiles (run settings), tiny (the offline tiny model), models (loading, generation),
data (the Vietnamese dataset and formats), train (the QLoRA trainer), memory (memory plans),
configs (reference configs and parameter counts), and one module per mechanism a chapter builds.
"""

__version__ = "0.1.0"

import logging as _logging

# bitsandbytes 0.50 warns at import, on CPUs with AVX512-BF16, that it cannot fetch an optional
# inference kernel from the Hub ("Failed to load CPU gemm_4bit_forward from kernels-community").
# The course turns that CPU inference path off anyway (models.keep_cpu_4bit_trainable): hide the noise.
_logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(_logging.ERROR)

import warnings as _warnings

# Raised inside peft/TRL (not by course code) on transformers 5.23; nothing a learner can act on.
_warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
