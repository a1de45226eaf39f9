"""fp8 weight storage: formats and scales (``formats``), which weights are held in fp8, how layers
take them and the one value a front door passes (``storage``: ``WeightStorage``), reading any
checkpoint that way (``source``), the core's cast-per-call layer namespace (``ops``), converting
while reading (``reading``), fp8 checkpoints (``writer``; the command is cli/quantize.py).
``lm/load.py`` and ``codec/load.py`` load through ``source.prepare``.

Cheap to import: only torch and the core's own modules.
"""
