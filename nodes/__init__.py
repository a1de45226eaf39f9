"""The ComfyUI layer of the pack: one module per job, each exporting ``NODES`` (its node classes).

Modules here import ComfyUI (``comfy``, ``comfy_api``, ``folder_paths``) and the pack's
``heartmula_core``; nothing else in the pack imports ComfyUI.
"""
