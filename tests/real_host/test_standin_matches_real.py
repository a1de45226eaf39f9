"""The stand-in host (tests/host) against the real ComfyUI API it imitates.

Every public function and class method the stand-in offers must exist in the real module with the
same leading parameters (names and defaults), so a call that works on the stand-in works in
ComfyUI. Parameters that moved between ComfyUI versions are keyword-only in the stand-in; those
must exist in the real callable by name with the same default, except the few ComfyUI added after
0.3.64 (``LATER_KEYWORDS``), which an older host may lack: the pack passes them only where the host
takes them. The stand-in follows 0.33 where versions differ; this passes against 0.3.64, 0.28 and
0.33. Runs when ``COMFYUI_DIR`` is set (tests/conftest.py then puts the real ComfyUI first on
sys.path); the schema comparison with the live server lives in test_real_comfyui.py.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import sys
import types
from pathlib import Path

import pytest

HOST = Path(__file__).resolve().parents[1] / "host"
pytestmark = pytest.mark.skipif(
    "COMFYUI_DIR" not in __import__("os").environ,
    reason="compares tests/host with a real ComfyUI: set COMFYUI_DIR=<a ComfyUI checkout>",
)

# stand-in module path (relative to tests/host) -> real module name
MODULES = {
    "comfy/model_management.py": "comfy.model_management",
    "comfy/model_patcher.py": "comfy.model_patcher",
    "comfy/lora.py": "comfy.lora",
    "comfy/utils.py": "comfy.utils",
    "comfy/ops.py": "comfy.ops",
    "folder_paths.py": "folder_paths",
    "comfy_api/latest/__init__.py": "comfy_api.latest",
    "comfy_api/latest/_io.py": "comfy_api.latest._io",
}
# Names that exist only to let tests drive or inspect the stand-in.
STANDIN_ONLY = {"calls", "loaded", "evicted", "reset_recording", "set_base_path"}
# Keyword-only parameters of the stand-in that ComfyUI added after 0.3.64: a host without them is
# fine (nodes/base.advanced passes ``advanced`` only where the host's inputs take it); a host with
# them must have the same default.
LATER_KEYWORDS = {"advanced"}


def load_standin(relative: str):
    """Import one stand-in file under a private package name, beside the real modules."""
    parts = Path(relative).with_suffix("").parts
    package = "standin_host"
    for depth in range(len(parts) - 1):
        name = ".".join((package,) + parts[: depth + 1])
        if name not in sys.modules:
            folder = HOST.joinpath(*parts[: depth + 1])
            spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                          submodule_search_locations=[str(folder)])
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
    if package not in sys.modules:
        sys.modules[package] = types.ModuleType(package)
        sys.modules[package].__path__ = [str(HOST)]
    name = ".".join((package,) + parts)
    if parts[-1] == "__init__":
        name = ".".join((package,) + parts[:-1])
    return importlib.import_module(name)


FACTORY_DEFAULT = getattr(dataclasses, "_HAS_DEFAULT_FACTORY", object())


def parameters(func):
    """(positional [(name, default)], keyword-only {name: default}) of a callable; None if unknown."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return None
    positional = [(p.name, p.default) for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    keyword = {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}
    return positional, keyword


def same_default(ours, theirs) -> bool:
    """Equal defaults; a dataclass list factory (0.28's Schema.inputs) means what None means in
    0.3.64 and in the stand-in: no items (the real Schema.finalize turns None into [])."""
    if ours is FACTORY_DEFAULT or theirs is FACTORY_DEFAULT:
        return all(d is None or d is FACTORY_DEFAULT for d in (ours, theirs))
    return ours is theirs or ours == theirs


def compare_callables(where: str, standin, real, faults: list[str]) -> None:
    """The stand-in's positional parameters are a leading prefix of the real ones (names and defaults);
    its keyword-only ones exist in the real callable under the same name, with the same default."""
    ours, theirs = parameters(standin), parameters(real)
    if ours is None or theirs is None:
        return
    (our_pos, our_kw), (their_pos, their_kw) = ours, theirs
    prefix = their_pos[: len(our_pos)]
    if len(prefix) != len(our_pos) or any(a[0] != b[0] or not same_default(a[1], b[1]) for a, b in zip(our_pos, prefix)):
        faults.append(f"{where}: stand-in takes {our_pos}, ComfyUI takes {their_pos}")
    by_name = dict(their_pos) | their_kw
    for name, default in our_kw.items():
        if name not in by_name:
            if name in LATER_KEYWORDS:
                continue
            faults.append(f"{where}: stand-in takes keyword {name!r}, ComfyUI has no such parameter")
        elif not same_default(default, by_name[name]):
            faults.append(f"{where}: keyword {name!r} defaults to {default!r} here, {by_name[name]!r} in ComfyUI")


def public_names(module):
    for name, value in vars(module).items():
        if name.startswith("_") or name in STANDIN_ONLY or isinstance(value, types.ModuleType):
            continue
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue  # data (recording lists, constants, __future__ features)
        if value.__module__ != module.__name__:
            continue  # imported, e.g. ABC
        yield name, value


@pytest.mark.parametrize("relative", sorted(MODULES))
def test_standin_api_exists_in_comfyui(relative):
    real = importlib.import_module(MODULES[relative])
    standin = load_standin(relative)
    faults = []
    for name, value in public_names(standin):
        where = f"{MODULES[relative]}.{name}"
        if not hasattr(real, name):
            faults.append(f"{where} does not exist in ComfyUI")
            continue
        target = getattr(real, name)
        if inspect.isclass(value):
            for member, attr in vars(value).items():
                if member.startswith("_") and member != "__init__":
                    continue
                if isinstance(attr, (classmethod, staticmethod)) or inspect.isfunction(attr):
                    if not hasattr(target, member):
                        faults.append(f"{where}.{member} does not exist in ComfyUI")
                    else:
                        compare_callables(f"{where}.{member}", getattr(value, member), getattr(target, member), faults)
            for socket_side in ("Input", "Output"):
                if hasattr(value, socket_side) and hasattr(target, socket_side):
                    compare_callables(f"{where}.{socket_side}", getattr(value, socket_side).__init__,
                                      getattr(target, socket_side).__init__, faults)
        elif callable(value):
            compare_callables(where, value, target, faults)
    # Parameters ComfyUI adds after ours are fine (we never pass them); anything else is a stand-in bug.
    ignorable = ("Combo.Output",)  # real Combo.Output takes options; the pack never makes one
    faults = [f for f in faults if not any(f"_io.{i}:" in f for i in ignorable)]
    assert not faults, "the stand-in differs from ComfyUI:\n" + "\n".join(faults)
