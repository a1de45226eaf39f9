"""HeartMuLa core: a plain PyTorch library for the HeartMuLa music models.

It never imports ComfyUI; the ComfyUI layer lives in the pack's ``nodes/`` folder.
Submodules are imported lazily by callers so that importing the package is cheap.
"""

__version__ = "0.1.0"
