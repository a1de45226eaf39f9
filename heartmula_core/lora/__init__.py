"""LoRAs of the LM: read (files.py, adapter_config.py), named (names.py), checked against the LM's
architecture before its weights load (fit.py: ``load_adapter`` -> ``Adapter``), and added to the
weights while they load (merge.py: ``Updates``, for ``load_lm(updates=)``) or into loaded weights
layer by layer (``merge_adapters``). Inside ComfyUI the node hands an
``Adapter`` to ComfyUI's patcher instead of merging (nodes/lora.py).
"""

from .fit import Adapter, LowRank, fit_adapter, load_adapter
from .merge import Updates, merge_adapters, merge_bytes

__all__ = ["Adapter", "LowRank", "fit_adapter", "load_adapter", "merge_adapters", "merge_bytes", "Updates"]
