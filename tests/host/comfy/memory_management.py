"""Stand-in for ``comfy.memory_management``: the DynamicVRAM switch.

ComfyUI sets ``aimdo_enabled = True`` at start-up when DynamicVRAM (comfy-aimdo) works on the GPU.
With it on, ``comfy.ops`` builds Linear and Embedding layers without weights (0.38: on every OS;
0.28: on Windows only, ``comfy.model_management.WINDOWS``); the stand-in follows 0.38. Tests switch it
on to take that construction path on the CPU.
"""

aimdo_enabled = False
