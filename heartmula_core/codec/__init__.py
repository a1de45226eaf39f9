"""HeartCodec: 12.5 Hz audio tokens (8 codebooks) -> 48 kHz stereo waveform.

Public API: ``load_codec``, ``decode``, ``estimate_decode_bytes``, ``CodecConfig``,
``checkpoint_layout``.
"""

from .config import CodecConfig
from .decode import decode, estimate_decode_bytes
from .layout import checkpoint_layout, is_ignored_key
from .load import load_codec
from .model import HeartCodec, build_codec

__all__ = [
    "CodecConfig", "HeartCodec", "build_codec", "checkpoint_layout", "decode",
    "estimate_decode_bytes", "is_ignored_key", "load_codec",
]
