"""course_utils: the helper package of the course "Tinh chỉnh LLM" (LoRA, QLoRA), in d2l's spirit.

Modules: profiles (run settings), tiny (the offline tiny model), models (loading, generation),
data (the Vietnamese dataset and formats), train (the QLoRA trainer), memory (memory plans),
configs (reference configs and parameter counts), templates (the loss mask), lab (the QLoRA lab's steps),
export (merge and share), compat (every workaround of an upstream behaviour), figures (the numbers each chapter
quotes), and one module per mechanism a chapter builds. Importing it changes nothing global.
"""

__version__ = "0.1.0"
