"""HeartMuLa, the music language model: tags + lyrics -> 12.5 Hz frames of 8 audio tokens.

Public API: ``load_lm`` (a folder -> ``LoadedLM``), ``build_prompt`` / ``Prompt``, ``generate`` /
``Generated`` (and its parts ``prefill``, ``decode_one_frame``, ``decode_n_frames``),
``frames_for_seconds``, ``check_fits``, ``estimate_generation_bytes``, ``Prefix`` (saved songs to
continue), ``HeartMuLaConfig``, ``GenConfig``. The song path (heartmula_core/song) is what the front
doors call; this is the model underneath.
"""

from .budget import check_fits, estimate_generation_bytes, frames_for_seconds
from .config import GenConfig, HeartMuLaConfig
from .generation import Generated, decode_n_frames, decode_one_frame, generate, prefill
from .load import LoadedLM, load_lm
from .model import HeartMuLa
from .prefix import Prefix
from .prompt import Prompt, build_prompt

__all__ = [
    "GenConfig", "Generated", "HeartMuLa", "HeartMuLaConfig", "LoadedLM", "Prefix", "Prompt", "build_prompt",
    "check_fits", "decode_n_frames", "decode_one_frame", "estimate_generation_bytes", "frames_for_seconds",
    "generate", "load_lm", "prefill",
]
