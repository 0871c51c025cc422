"""Lipsmith engine: audio, video, faces, models, rendering. No Qt in here."""
from core.memory import bound_native_heap

__version__ = "0.1.0"

# Process-wide and first: every entry point (CLI, editor, workers, benches) decodes frames
# through the engine, and the threshold must be fixed before the heap fragments.
bound_native_heap()
