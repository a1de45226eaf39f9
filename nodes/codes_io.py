"""Save / Load HeartMuLa Codes: audio tokens to and from safetensors files in ComfyUI's output and
input folders, to re-decode a take (another seed, more steps) without running the LM again.

The file format is the core's (heartmula_core/codes.py), shared with
``python -m heartmula_core sample`` / ``decode``: tensors ``codes`` [B, 8, T] and ``lengths`` [B].
"""

from __future__ import annotations

import os
from pathlib import Path

import folder_paths
from comfy_api.latest import io

from ..heartmula_core.codes import FRAME_RATE, load_codes, save_codes
from ..heartmula_core.errors import CodesError
from .base import HeartMuLaNode
from .file_listing import files_with_extension
from .types import CodesSocket, HeartMuLaCodes

EXTENSION = ".safetensors"
OUTPUT_SUFFIX = " [output]"  # ComfyUI's annotation for a file in the output folder
NAME_MAX, PATH_MAX = 255, 4096  # bytes per path component and per path (Linux; Windows allows fewer)


def _check_name(relative: str) -> None:
    """A name the file system can hold: no NUL, no component or path longer than the OS allows.
    (Otherwise os.path and open raise ValueError / OSError, which reached users as such.)"""
    if not isinstance(relative, str):
        raise CodesError(f"The file name must be text, got {type(relative).__name__}.")
    if "\x00" in relative:
        raise CodesError(f"The file name {relative!r:.80} contains a NUL character; type a plain file name.")
    encoded = os.fsencode(relative)
    if len(encoded) > PATH_MAX or any(len(part) > NAME_MAX - 20 for part in encoded.split(b"/")):
        raise CodesError(f"The file name '{relative:.40}...' ({len(relative)} characters) is too long: keep each "
                         f"folder or file name under {NAME_MAX - 20} bytes.")


def _inside(base: str, relative: str) -> Path:
    """``base/relative``, refusing names that leave ``base`` (.., absolute paths, symlinks out)."""
    _check_name(relative)
    base_real = os.path.realpath(base)
    try:
        target = os.path.realpath(os.path.join(base_real, relative))
    except (OSError, ValueError) as exc:
        raise CodesError(f"'{relative:.200}' cannot be used as a file name here ({exc}).") from None
    if os.path.commonpath([base_real, target]) != base_real or target == base_real:
        raise CodesError(f"'{relative}' points outside {base}; use a name inside that folder.")
    return Path(target)


def read_codes(path: Path) -> HeartMuLaCodes:
    codes, lengths = load_codes(path)
    return HeartMuLaCodes(codes, lengths, FRAME_RATE, {"file": path.name})


class SaveHeartMuLaCodes(HeartMuLaNode):
    """Saves audio tokens to the output folder (safetensors), to decode them again later without
    re-running the LM."""

    @classmethod
    def define_schema(cls):
        return cls.declare(
            "HeartMuLaSaveCodes", "Save HeartMuLa Codes", inputs=[
                CodesSocket.Input("codes", tooltip="Audio tokens from the HeartMuLa Sampler."),
                io.String.Input("filename_prefix", default="heartmula/codes",
                                tooltip="File name prefix inside the output folder; a counter and "
                                        ".safetensors are added. Subfolders are allowed, leaving the output "
                                        "folder is not."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, codes, filename_prefix: str) -> io.NodeOutput:
        output_dir = folder_paths.get_output_directory()
        _inside(output_dir, filename_prefix)  # our own check first: a clear message, no folder created
        folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, output_dir)
        name = f"{filename}_{counter:05}_{EXTENSION}"
        path = _inside(output_dir, os.path.join(subfolder, name))
        save_codes(path, codes.codes, codes.lengths)
        return io.NodeOutput(ui={"heartmula_codes": [{"filename": name, "subfolder": subfolder, "type": "output"}]})


def _list_codes_files() -> list[str]:
    """Codes files in the input folder, then in the output folder (marked " [output]"). Runs whenever
    the schema is built (every prompt from ComfyUI 0.39), so it costs a stat per folder when nothing
    changed, however many files output/ holds (file_listing.py)."""
    return (files_with_extension(folder_paths.get_input_directory(), EXTENSION)
            + [name + OUTPUT_SUFFIX for name in files_with_extension(folder_paths.get_output_directory(), EXTENSION)])


def resolve_codes_file(name: str) -> Path:
    if name.endswith(OUTPUT_SUFFIX):
        base, relative = folder_paths.get_output_directory(), name[: -len(OUTPUT_SUFFIX)]
    else:
        base, relative = folder_paths.get_input_directory(), name
    path = _inside(base, relative)
    if not os.path.isfile(path):
        raise CodesError(f"Codes file '{relative}' was not found in {base}. Pick one from the list (refresh the "
                         "page after saving new codes).")
    return path


class LoadHeartMuLaCodes(HeartMuLaNode):
    """Loads audio tokens saved by Save HeartMuLa Codes (input folder, or output folder entries marked
    [output])."""

    @classmethod
    def define_schema(cls):
        return cls.declare(
            "HeartMuLaLoadCodes", "Load HeartMuLa Codes", inputs=[
                io.Combo.Input("file", options=_list_codes_files(),
                               tooltip="A .safetensors codes file in the input folder, or one saved in the "
                                       "output folder (marked [output])."),
            ],
            outputs=[CodesSocket.Output(display_name="codes", tooltip="The saved audio tokens.")],
        )

    @classmethod
    def fingerprint_inputs(cls, file: str):
        try:
            stat = resolve_codes_file(file).stat()
            return f"{stat.st_mtime_ns}-{stat.st_size}"
        except (CodesError, OSError):
            return ""  # execute reports the problem with the pack's own error

    @classmethod
    def execute(cls, file: str) -> io.NodeOutput:
        return io.NodeOutput(read_codes(resolve_codes_file(file)))


NODES = [SaveHeartMuLaCodes, LoadHeartMuLaCodes]
