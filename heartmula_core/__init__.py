"""HeartMuLa core: a plain PyTorch library for the HeartMuLa music models.

It never imports ComfyUI; the ComfyUI layer lives in the pack's ``nodes/`` folder. The small public
API the front doors use (the nodes, the command line, the batch runner) is importable from here,
lazily, so ``import heartmula_core`` stays cheap (docs/ARCHITECTURE.md lists it):

    settings = heartmula_core.SongSettings(seed=1, seconds=60)
    lm = heartmula_core.LMFolder("models/HeartMuLa/HeartMuLa-oss-3B", device, dtype)
    plan = heartmula_core.plan_song(lm, heartmula_core.prompt_for(lm, tags, lyrics), settings)
    result = heartmula_core.sample_song(lm, plan)

LoRAs: ``SongSettings(loras=(("my_style/", 0.8),))`` and ``LMFolder(..., loras=settings.loras)`` (checked
at once, added to the weights as they load), or ``load_adapter`` / ``merge_adapters`` on a loaded model.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {  # name -> the module (relative to this package) that defines it
    **dict.fromkeys(("SongSettings", "KNOBS", "MAX_SEED", "WEIGHT_DTYPE_CHOICES"), "settings"),
    **dict.fromkeys(("LMFolder", "CodecFolder", "SongPlan", "DecodePlan", "Song", "Audio", "plan_song",
                     "plan_decode", "sample_song", "decode_song", "make_song", "prompt_for", "read_start",
                     "song_start"), "song"),
    **dict.fromkeys(("load_codes", "save_codes", "check_codes", "FRAME_RATE", "CODEBOOKS"), "codes"),
    **dict.fromkeys(("HeartMuLaError", "CheckpointError", "PromptError", "SettingsError", "CodesError",
                     "OutputError", "LoraError"), "errors"),
    **dict.fromkeys(("load_adapter", "merge_adapters", "Adapter"), "lora"),
    "WeightStorage": "quant.storage",
    "write_audio": "audio_files",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
