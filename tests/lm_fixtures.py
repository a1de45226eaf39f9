"""Helpers shared by the LM tests: paths to the tiny reference checkpoint and its expected outputs."""

import json
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).parent / "data"
TINY = DATA / "tiny"
TINY_CKPT = TINY / "ckpt"
TINY_LM = TINY_CKPT / "HeartMuLa-oss-3B"


@lru_cache(maxsize=1)
def expected():
    from safetensors.torch import load_file

    return load_file(str(TINY / "expected.safetensors"))


@lru_cache(maxsize=1)
def expected_inputs() -> dict:
    return json.loads((TINY / "expected.json").read_text(encoding="utf-8"))


def manifest(name: str) -> dict:
    return json.loads((DATA / "manifests" / name).read_text(encoding="utf-8"))["keys"]
