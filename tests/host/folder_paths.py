"""Stand-in for ComfyUI's ``folder_paths``: the model folder registry and the user folders.

Tests point ``base_path`` at a temporary directory with ``set_base_path``.
"""

from __future__ import annotations

import os

supported_pt_extensions = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
folder_names_and_paths: dict[str, tuple[list[str], set[str]]] = {}
base_path = os.path.abspath(os.getcwd())
models_dir = os.path.join(base_path, "models")
output_directory = os.path.join(base_path, "output")
input_directory = os.path.join(base_path, "input")
temp_directory = os.path.join(base_path, "temp")


def set_base_path(path: str) -> None:
    """(stand-in only) Re-root every folder, as ``main.py --base-directory`` does."""
    global base_path, models_dir, output_directory, input_directory, temp_directory
    base_path = os.path.abspath(path)
    models_dir = os.path.join(base_path, "models")
    output_directory = os.path.join(base_path, "output")
    input_directory = os.path.join(base_path, "input")
    temp_directory = os.path.join(base_path, "temp")
    folder_names_and_paths.clear()


def get_output_directory() -> str:
    return output_directory


def get_input_directory() -> str:
    return input_directory


def get_temp_directory() -> str:
    return temp_directory


def set_output_directory(output_dir: str) -> None:
    global output_directory
    output_directory = output_dir


def set_input_directory(input_dir: str) -> None:
    global input_directory
    input_directory = input_dir


def set_temp_directory(temp_dir: str) -> None:
    global temp_directory
    temp_directory = temp_dir


def add_model_folder_path(folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
    if folder_name in folder_names_and_paths:
        paths, _ = folder_names_and_paths[folder_name]
        if full_folder_path in paths:
            if is_default and paths[0] != full_folder_path:
                paths.remove(full_folder_path)
                paths.insert(0, full_folder_path)
        elif is_default:
            paths.insert(0, full_folder_path)
        else:
            paths.append(full_folder_path)
    else:
        folder_names_and_paths[folder_name] = ([full_folder_path], set())


def get_folder_paths(folder_name: str) -> list[str]:
    return folder_names_and_paths[folder_name][0][:]


def get_save_image_path(filename_prefix: str, output_dir: str, image_width=0, image_height=0):
    """(folder, file name, next counter, subfolder, prefix) for ``<prefix>_<counter:05>_.<ext>`` files;
    refuses prefixes that leave ``output_dir``."""
    subfolder = os.path.dirname(os.path.normpath(filename_prefix))
    filename = os.path.basename(os.path.normpath(filename_prefix))
    full_output_folder = os.path.join(output_dir, subfolder)
    if os.path.commonpath((output_dir, os.path.abspath(full_output_folder))) != output_dir:
        raise Exception("**** ERROR: Saving image outside the output folder is not allowed.")
    os.makedirs(full_output_folder, exist_ok=True)
    counters = []
    for name in os.listdir(full_output_folder):
        head = name[: len(filename) + 1]
        if os.path.normcase(head[:-1]) == os.path.normcase(filename) and head[-1:] == "_":
            try:
                counters.append(int(name[len(filename) + 1:].split("_")[0]))
            except ValueError:
                pass
    counter = max(counters, default=0) + 1
    return full_output_folder, filename, counter, subfolder, filename_prefix


folder_names_and_paths["loras"] = ([os.path.join(models_dir, "loras")], supported_pt_extensions)


def get_filename_list(folder_name: str) -> list[str]:
    """Files (with the folder's extensions, if it names any) under every path of ``folder_name``,
    relative with '/' separators, sorted and without duplicates (no caching here)."""
    paths, extensions = folder_names_and_paths[folder_name]
    found = set()
    for root in paths:
        for folder, dirs, files in os.walk(root, followlinks=True):
            dirs[:] = [d for d in dirs if d != ".git"]
            for name in files:
                if not extensions or os.path.splitext(name)[1].lower() in extensions:
                    found.add(os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/"))
    return sorted(found)


def get_full_path(folder_name: str, filename: str) -> str | None:
    """The first path of ``folder_name`` holding the file ``filename`` (kept inside those folders)."""
    if folder_name not in folder_names_and_paths:
        return None
    filename = os.path.relpath(os.path.join("/", filename), "/")
    for root in folder_names_and_paths[folder_name][0]:
        full = os.path.join(root, filename)
        if os.path.isfile(full):
            return full
    return None
