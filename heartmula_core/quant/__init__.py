"""fp8 weight storage: formats and scales (``formats``), which weights and how hosts take them
(``store``), the core's cast-per-call layers (``layers``), fp8 checkpoints (``writer``, ``cli``).

Cheap to import: only torch and the core's own modules.
"""
