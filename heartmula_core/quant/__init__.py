"""fp8 weight storage: formats and scales (``formats``), which weights and how hosts take them
(``store``), the core's cast-per-call layers (``layers``), converting while reading (``reading``),
fp8 checkpoints (``writer``; the command is cli/quantize.py). ``lm/load.py`` and ``codec/load.py``
load through ``store.prepare``.

Cheap to import: only torch and the core's own modules.
"""
