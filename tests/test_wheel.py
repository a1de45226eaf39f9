"""The wheel users get from ``pip install .`` (or ``pip install "comfyui-heartmula[ray]"``): it holds
every module of heartmula_core, and installed where the checkout is not on ``sys.path`` (a plain
folder on PYTHONPATH, run from another working folder) it runs the command line, with the same codes
as the checkout. An editable install hides a package left out of the wheel; this does not."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from heartmula_core.__main__ import main
from heartmula_core.codes import load_codes

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "tests" / "data" / "tiny" / "ckpt"


# Runs a module with this venv's editable install of the pack switched off (its import hook would
# otherwise fill in whatever the wheel lacks from the checkout).
WITHOUT_EDITABLE = """
import runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(type(f), "__module__", "")]
sys.path_hooks[:] = [h for h in sys.path_hooks if "__editable__" not in getattr(h, "__module__", "")]
sys.path_importer_cache.clear()
module = sys.argv.pop(1)
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the project files (the checkout stays free of build output)."""
    pytest.importorskip("setuptools", reason="building the wheel needs setuptools (the [test] extra)")
    src, dist = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "heartmula_core", src / "heartmula_core", ignore=shutil.ignore_patterns("__pycache__"))
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src))
    [built] = dist.glob("comfyui_heartmula-*.whl")
    return built


def test_the_wheel_holds_every_module_of_the_core(wheel):
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "heartmula_core").rglob("*.py")}
    shipped = set(zipfile.ZipFile(wheel).namelist())
    assert modules - shipped == set()
    assert {"heartmula_core/cli/main.py", "heartmula_core/song/plan.py", "heartmula_core/quant/storage.py"} <= shipped
    assert not [n for n in shipped if n.startswith(("nodes/", "tests/", "benchmarks/"))]


def test_installed_outside_the_checkout_it_samples_the_same_codes(wheel, tmp_path):
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    run(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel))
    env = {**os.environ, "PYTHONPATH": str(site)}
    (elsewhere / "where.py").write_text("import heartmula_core.cli.main as m; print(m.__file__)\n")
    where = run(sys.executable, "-c", WITHOUT_EDITABLE, "where", cwd=elsewhere, env={**env, "PYTHONPATH": f"{site}:{elsewhere}"})
    assert Path(where.stdout.strip()).resolve().is_relative_to(site.resolve())
    args = ["sample", "--model-dir", str(CKPT), "--tags", "piano", "--lyrics", "[Verse]\nla la", "--seconds", "2",
            "--seed", "3", "--device", "cpu"]
    run(sys.executable, "-c", WITHOUT_EDITABLE, "heartmula_core", *args, "--codes-out",
        str(tmp_path / "wheel.safetensors"), cwd=elsewhere, env={**env, "OMP_NUM_THREADS": "1"})
    assert main([*args, "--codes-out", str(tmp_path / "checkout.safetensors")]) == 0
    wheel_codes, checkout_codes = load_codes(tmp_path / "wheel.safetensors"), load_codes(tmp_path / "checkout.safetensors")
    assert all(a.equal(b) for a, b in zip(wheel_codes, checkout_codes))
