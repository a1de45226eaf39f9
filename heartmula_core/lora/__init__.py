"""LoRAs of the LM: read (files.py, adapter_config.py), named (names.py), checked against the LM's
architecture before its weights load (fit.py: ``load_adapter`` -> ``Adapter``), and merged into
loaded weights layer by layer (merge.py: ``merge_adapters``). Inside ComfyUI the node hands an
``Adapter`` to ComfyUI's patcher instead of merging (nodes/lora.py).
"""

from .fit import Adapter, LowRank, fit_adapter, load_adapter
from .merge import merge_adapters, merge_bytes

__all__ = ["Adapter", "LowRank", "fit_adapter", "load_adapter", "merge_adapters", "merge_bytes"]
