"""Loading does not double memory: peak RSS of a fresh process loading a >1 GB float32 checkpoint.

The limit applies to what loading adds to the process's resident memory: a fresh interpreter with
torch imported already holds 0.5-0.7 GB of shared libraries (the CUDA wheel) before any weight is read.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from heartmula_core.lm.load import build_lm
from heartmula_core.lm.config import HeartMuLaConfig
from lm_fixtures import TINY_CKPT
from streaming_safetensors import write_random_checkpoint

CONFIG = {
    "backbone_flavor": "test-1.4GB",
    "backbone": {"num_layers": 24, "num_heads": 16, "num_kv_heads": 4, "embed_dim": 1024,
                 "intermediate_dim": 4096, "max_seq_len": 2048},
    "decoder_flavor": "test-decoder",
    "decoder": {"num_layers": 2, "num_heads": 8, "num_kv_heads": 4, "embed_dim": 1024,
                "intermediate_dim": 4096, "max_seq_len": 64},
    "audio_vocab_size": 69, "text_vocab_size": 300, "audio_num_codebooks": 8, "muq_dim": 512,
    "model_type": "heartmula",
}

MEASURE = """
import resource, sys, torch
from heartmula_core.lm.load import load_lm
torch.set_num_threads(1)
dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[sys.argv[2]]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
lm = load_lm(sys.argv[1], dtype=dtype)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before * 1024, peak * 1024)
"""


@pytest.fixture(scope="module")
def big_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("big")
    folder = root / "HeartMuLa-oss-3B"
    folder.mkdir()
    for name in ("tokenizer.json", "gen_config.json"):
        shutil.copy(TINY_CKPT / name, root / name)
    (folder / "config.json").write_text(json.dumps(CONFIG))
    shapes = {k: tuple(v.shape) for k, v in build_lm(HeartMuLaConfig.from_dict(CONFIG)).state_dict().items()}
    size = write_random_checkpoint(folder / "model.safetensors", shapes)
    assert size > 1.0e9
    yield folder, size
    shutil.rmtree(root)


def peak_rss(folder: Path, dtype: str) -> tuple[int, int]:
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", MEASURE, str(folder), dtype], cwd=repo,
                         capture_output=True, text=True, check=True)
    before, peak = map(int, out.stdout.split())
    return before, peak


@pytest.mark.parametrize("dtype,limit", [("fp32", 1.3), ("bf16", 0.8)])
def test_peak_rss_stays_near_the_loaded_size(big_checkpoint, dtype, limit):
    folder, size = big_checkpoint
    before, peak = peak_rss(folder, dtype)
    print(f"{dtype}: file {size / 1e9:.2f} GB, peak RSS {peak / 1e9:.2f} GB ({peak / size:.2f} x file), "
          f"{before / 1e9:.2f} GB before loading")
    assert peak - before < limit * size
