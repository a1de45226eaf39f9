"""What installing the pack may change: requirements.txt and pyproject.toml ask for the same
packages, and neither names torch, torchaudio or torchvision (ComfyUI owns those), so
``pip install -r requirements.txt`` inside ComfyUI never reinstalls torch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH_FAMILY = {"torch", "torchaudio", "torchvision"}


def name_of(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def requirements_txt() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def pyproject_dependencies() -> list[str]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def test_requirements_txt_and_pyproject_ask_for_the_same_packages():
    assert sorted(requirements_txt()) == sorted(pyproject_dependencies())


def test_no_requirement_names_torch_or_torchaudio():
    named = {name_of(r) for r in requirements_txt() + pyproject_dependencies()}
    assert not named & TORCH_FAMILY, named & TORCH_FAMILY


def test_modelscope_is_an_optional_extra_that_installing_the_pack_never_pulls_in():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "modelscope" not in {name_of(r) for r in requirements_txt() + pyproject_dependencies()}
    extras = project["optional-dependencies"]
    assert [name_of(r) for r in extras["modelscope"]] == ["modelscope"]
    assert "modelscope" in {name_of(r) for r in extras["test"]}  # scripts/setup-dev installs it for the tests
