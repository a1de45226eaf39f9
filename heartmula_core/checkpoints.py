"""Find, validate and load checkpoint folders in the released Hugging Face layout.

    <root>/HeartMuLa-oss-3B/{config.json, model.safetensors | model.safetensors.index.json + shards}
    <root>/HeartCodec-oss/{config.json, model.safetensors}
    <root>/tokenizer.json, <root>/gen_config.json   (or inside the LM folder)

Models are built on the meta device (no weight initialisation) and filled tensor by tensor from
disk, so loading a float32 checkpoint as bf16 peaks near the bf16 size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import CheckpointError
from .lm.config import GenConfig, HeartMuLaConfig
from .weights import TensorSource, load_into, tensor_shapes

LM_REPOS = {
    "HeartMuLa-oss-3B": "HeartMuLa/HeartMuLa-oss-3B",
    "HeartMuLa-RL-oss-3B-20260123": "HeartMuLa/HeartMuLa-RL-oss-3B-20260123",
}
CODEC_REPOS = {
    "HeartCodec-oss": "HeartMuLa/HeartCodec-oss",
    "HeartCodec-oss-20260123": "HeartMuLa/HeartCodec-oss-20260123",
}
ROOT_REPO = "HeartMuLa/HeartMuLaGen"  # holds the shared tokenizer.json and gen_config.json


def download_hint(folder: Path, kind: str = "lm") -> str:
    """The ``hf download`` command for ``folder``: its official repo by name, else the default ``kind``
    ("lm" or "codec") repo."""
    default = LM_REPOS["HeartMuLa-oss-3B"] if kind == "lm" else CODEC_REPOS["HeartCodec-oss"]
    repo = {**LM_REPOS, **CODEC_REPOS}.get(folder.name, default)
    return f"Download it with: hf download {repo} --local-dir \"{folder}\""


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


def weight_files(folder: Path, kind: str = "lm") -> list[Path]:
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


def _find_beside(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder.parent / name):
        if candidate.is_file():
            return candidate
    raise CheckpointError(
        f"{name} not found in {folder} or {folder.parent}. It ships in the root of the HeartMuLa download: "
        f"hf download {ROOT_REPO} {name} --local-dir \"{folder.parent}\""
    )


@dataclass
class LMFiles:
    folder: Path
    config: Path
    weights: list[Path]
    tokenizer: Path
    gen_config: Path


def resolve_lm_folder(path: str | Path) -> LMFiles:
    """Accept the LM folder itself, or a root holding exactly one LM folder."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise CheckpointError(f"HeartMuLa checkpoint folder {folder} does not exist. {download_hint(folder)}")
    if not (folder / "config.json").is_file():
        inner = list_lm_folders(folder)
        if len(inner) == 1:
            folder = folder / inner[0]
        else:
            raise CheckpointError(
                f"{folder} has no config.json"
                + (f" and holds several LM folders ({', '.join(inner)}): pick one" if inner else
                   "; point to a HeartMuLa LM folder such as HeartMuLa-oss-3B")
                + f". {download_hint(folder / 'HeartMuLa-oss-3B')}"
            )
    return LMFiles(folder, folder / "config.json", weight_files(folder),
                   _find_beside(folder, "tokenizer.json"), _find_beside(folder, "gen_config.json"))


def _model_type(folder: Path) -> str | None:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def _list_folders(root: Path, model_type: str, prefix: str) -> list[str]:
    root = Path(root)
    if not root.is_dir():
        return []
    names = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and (child / "config.json").is_file():
            kind = _model_type(child)
            if kind == model_type or (kind is None and child.name.lower().startswith(prefix)):
                names.append(child.name)
    return names


def list_lm_folders(root: str | Path) -> list[str]:
    return _list_folders(Path(root), "heartmula", "heartmula")


def list_codec_folders(root: str | Path) -> list[str]:
    return _list_folders(Path(root), "heartcodec", "heartcodec")


@dataclass
class LoadedLM:
    model: torch.nn.Module
    tokenizer: object  # tokenizers.Tokenizer
    gen_config: GenConfig
    config: HeartMuLaConfig
    files: LMFiles


def load_tokenizer(path: Path):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the tokenizers library raises a bare Exception on bad files
        raise CheckpointError(f"{path} is not a valid tokenizer.json ({exc}). Re-download it.") from None


def build_lm(config: HeartMuLaConfig, operations=None, device="meta") -> torch.nn.Module:
    from .lm.model import HeartMuLa

    with torch.device(device):
        return HeartMuLa(config, operations)


def load_lm(path: str | Path, device="cpu", dtype: torch.dtype = torch.float32, operations=None) -> LoadedLM:
    """Load an LM folder onto ``device`` with floating weights in ``dtype``."""
    files = resolve_lm_folder(path)
    config = HeartMuLaConfig.from_file(files.config)
    gen_config = GenConfig.from_file(files.gen_config, config)
    tokenizer = load_tokenizer(files.tokenizer)
    model = build_lm(config, operations)
    source = TensorSource.from_files(files.weights, ", ".join(str(f) for f in files.weights))
    # The architecture's tensors come from a torch.nn build: a host's layers may be built weightless.
    load_into(model, source, lambda _key: dtype, device=device, expected=tensor_shapes(build_lm(config)))
    return LoadedLM(model, tokenizer, gen_config, config, files)
