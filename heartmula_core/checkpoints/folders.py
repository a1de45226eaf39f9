"""One model folder on disk: what kind it is, which weight files it holds, the shared files beside
it, and the folder a user meant when they named a root holding it.

Checkpoint files are untrusted input: an index may only name shard files beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import CheckpointError
from .kinds import KINDS, MODELSCOPE_SHARED_REPO, SHARED_REPO, download_hint, hf_command, modelscope_command


def read_json_object(path: Path, fix: str) -> dict:
    """A JSON file that holds an object; anything else is a CheckpointError naming the file and ``fix``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing. {fix}") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"Cannot read {path}: {exc}. {fix}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object. {fix}")
    return data


def read_model_type(folder: Path) -> str | None:
    """``model_type`` from a folder's config.json, or None when there is no readable config."""
    try:
        return json.loads((Path(folder) / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def is_kind(folder: Path, kind: str) -> bool:
    """A folder with a config.json naming the kind's model_type (or, for kinds that allow it, naming
    none and named like the kind)."""
    model = KINDS[kind]
    if not (folder.is_dir() and (folder / "config.json").is_file()):
        return False
    found = read_model_type(folder)
    return found == model.model_type or (
        found is None and model.name_prefix is not None and folder.name.lower().startswith(model.name_prefix))


def list_folders(root: str | Path, kind: str) -> list[str]:
    """Names of the folders of ``kind`` directly in ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [child.name for child in sorted(root.iterdir()) if is_kind(child, kind)]


def refuse_a_file(path: Path, what: str) -> None:
    """A path that names a file, or lies inside one, is a slip (a weight file given for its folder),
    not a folder to download into: one error saying so (``what``: how messages call the folder)."""
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is None:
        return
    where = f"{path} is a file" if blocker == path else f"{path} lies inside the file {blocker}"
    raise CheckpointError(f"{what} {where}, not a folder. Give the folder that holds config.json and the "
                          f"weights, e.g. {blocker.parent}.")


def resolve_folder(path: str | Path, kind: str, how_to_pick: str = "") -> Path:
    """The folder of ``kind`` itself, or a root holding exactly one (``how_to_pick``: what the caller
    offers for choosing among several, e.g. a flag)."""
    model = KINDS[kind]
    folder = Path(path).expanduser()
    if not folder.is_dir():
        refuse_a_file(folder, f"{model.label} folder")
        raise CheckpointError(f"{model.label} folder {folder} does not exist. {download_hint(folder, kind)}")
    if (folder / "config.json").is_file():
        refuse_another_kind(folder, kind, how_to_pick)
        return folder
    inner = list_folders(folder, kind)
    if len(inner) == 1:
        return folder / inner[0]
    if inner:  # nothing to download: the user has to choose
        raise CheckpointError(f"{folder} has no config.json and holds several {model.label} folders "
                              f"({', '.join(inner)}): pick one{how_to_pick or ' and give its folder'}.")
    raise CheckpointError(f"{folder} has no config.json; point to a {model.label} folder such as "
                          f"{model.default_name}. {download_hint(folder / model.default_name, kind)}")


def refuse_another_kind(folder: Path, kind: str, how_to_pick: str = "") -> None:
    """A folder whose config.json names another kind of model (an LM folder given for the codec) is
    refused by name, before its weights would be read against the wrong architecture."""
    found = read_model_type(folder)
    other = next((k for k in KINDS.values() if k.model_type == found and k.key != kind), None)
    if other is not None:
        label = KINDS[kind].label
        raise CheckpointError(f"{folder} is a {other.label} folder (its config.json says model_type {found!r}), not "
                              f"a {label} folder: give a {label} folder{how_to_pick}.")


def codec_folder_near(model_dir: str | Path, how_to_pick: str = "") -> Path:
    """The codec folder in ``model_dir`` or, when that is an LM folder itself, beside it."""
    root = Path(model_dir).expanduser()
    if not list_folders(root, "codec") and (root / "config.json").is_file() and list_folders(root.parent, "codec"):
        root = root.parent
    return resolve_folder(root, "codec", how_to_pick)


def codec_folder_for(model_dir: str | Path, codec_dir: str | Path | None = None, how_to_pick: str = "") -> Path:
    """The codec folder a run uses: ``codec_dir`` when given, else the one near ``model_dir``."""
    return resolve_folder(codec_dir, "codec", how_to_pick) if codec_dir else codec_folder_near(model_dir, how_to_pick)


def find_shared(folder: Path, name: str) -> Path:
    """A file every LM shares (tokenizer.json, gen_config.json): inside ``folder`` or beside it."""
    for candidate in (folder / name, folder.parent / name):
        if candidate.is_file():
            return candidate
    raise CheckpointError(
        f"{name} not found in {folder} or {folder.parent}. It ships in the root of the HeartMuLa download: "
        f"{hf_command(SHARED_REPO, folder.parent, [name])} (or from ModelScope: "
        f"{modelscope_command(MODELSCOPE_SHARED_REPO, folder.parent, [name])})"
    )


def missing_shared(folder: Path, kind: str) -> list[str]:
    """The kind's shared files found neither inside ``folder`` nor beside it."""
    return [f for f in KINDS[kind].shared_files if not (folder / f).is_file() and not (folder.parent / f).is_file()]


def _shard_names(index: Path) -> list[str]:
    """The shard file names of an index; each must be a plain name of a file beside it."""
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        names = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise CheckpointError(f"{index} is not a valid safetensors index ({type(exc).__name__}: {exc}). "
                              "Re-download the folder.") from None
    outside = [repr(n) for n in names if not isinstance(n, str) or n in ("", ".", "..") or Path(n).name != n
               or "\\" in n or "\0" in n]
    if outside:
        raise CheckpointError(f"{index} names shard(s) outside its folder: {', '.join(outside[:3])}. Shards must be "
                              "files beside the index; re-download the folder.")
    return names


def weight_files(folder: Path, kind: str) -> list[Path]:
    """model.safetensors, or the shards named by model.safetensors.index.json (files in ``folder``)."""
    single = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = [folder / name for name in _shard_names(index)]
        missing = [s.name for s in shards if not s.exists()]
        if missing:
            raise CheckpointError(f"{index} names shard(s) that are not in {folder}: {', '.join(missing)}. "
                                  f"{download_hint(folder, kind)}")
        return shards
    if single.is_file():
        return [single]
    found = sorted(p.name for p in folder.glob("*.safetensors"))
    if len(found) == 1:
        return [folder / found[0]]
    raise CheckpointError(
        f"No weights in {folder}: expected model.safetensors or model.safetensors.index.json"
        + (f" (found {', '.join(found)})" if found else "")
        + f". {download_hint(folder, kind)}"
    )
