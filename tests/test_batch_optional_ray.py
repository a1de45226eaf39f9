"""Ray stays optional: the library, the command line and the node pack never import it on their own."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_importing_the_library_and_building_the_cli_does_not_import_ray():
    code = ("import sys, heartmula_core, heartmula_core.cli.main as m; m.build_parser(); "
            "import heartmula_core.batch.driver, heartmula_core.batch.local; "
            "print(sorted(n for n in sys.modules if n == 'ray' or n.startswith('ray.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_node_pack_never_mentions_ray_or_the_batch_package():
    files = [ROOT / "__init__.py", *sorted((ROOT / "nodes").rglob("*.py"))]
    offenders = [f.name for f in files
                 if re.search(r"^\s*(import ray|from ray\b)|heartmula_core\.batch", f.read_text(), re.M)]
    assert files[1:] and offenders == []


def test_ray_is_missing_gives_the_install_command(monkeypatch):
    import builtins

    from heartmula_core.batch.ray_runner import import_ray
    from heartmula_core.errors import HeartMuLaError

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(HeartMuLaError, match=r"pip install 'comfyui-heartmula\[ray\]'"):
        import_ray()
