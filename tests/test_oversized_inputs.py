"""Inputs too large to use are refused from their size, before they are read, copied or tokenized:
a continuation of a long song a million times over, a lyrics file of 100 MB, a jobs line holding
megabytes of lyrics. Each is one `error:` line, and the process's peak memory stays near where it
was before the command ran (measured in a fresh process, VmHWM)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from heartmula_core.codes import save_codes
from heartmula_core.text_input import MAX_TEXT_BYTES

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "tests" / "data" / "tiny" / "ckpt"
PEAK_MARGIN_MB = 150  # a refusal may tokenize a little and build small tables, never copy the input

MEASURE = """
import re, sys
import torch, heartmula_core.song, heartmula_core.batch.driver  # what any run imports anyway
from heartmula_core.cli.main import main
def peak_mb():
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) // 1024
before = peak_mb()
rc = main(sys.argv[1:])
print(f"PEAK {before} {peak_mb()} {rc}")
"""


def run_measured(*argv: str) -> tuple[int, int, str]:
    """(exit status, MB the command added to the process's peak, its stderr)."""
    done = subprocess.run([sys.executable, "-c", MEASURE, *argv], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    found = re.search(r"PEAK (\d+) (\d+) (\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    before, after, rc = (int(g) for g in found.groups())
    return rc, after - before, done.stderr


def one_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_a_million_continuations_are_refused_from_their_lengths(tmp_path):
    long_song = tmp_path / "long.safetensors"  # 2 songs of 100 000 frames: 12.8 MB of codes
    save_codes(long_song, torch.zeros(2, 8, 100_000, dtype=torch.long), torch.tensor([100_000, 90_000]))
    args = ["sample", "--model-dir", str(CKPT), "--tags", "piano", "--lyrics", "la la", "--seconds", "2",
            "--device", "cpu", "--batch", "1000000", "--codes-out", str(tmp_path / "out.safetensors")]
    rc, added, err = run_measured(*args, "--continue-from", str(long_song), "--keep-seconds", "1")
    line = one_error(err)
    assert rc == 2 and "Sampling 2000000 song(s)" in line and "needs about" in line, line
    # the same refusal for new songs reads the tokenizer and config and builds the checks' tables too
    rc, reference, err = run_measured(*args)
    assert rc == 2 and "Sampling 1000000 song(s)" in one_error(err)
    assert added - reference < 64, f"continuing added {added - reference} MB (the codes x 1e6 are 12.8 TB)"
    assert not (tmp_path / "out.safetensors").exists()


@pytest.mark.parametrize("door,batch", [("sample", 10**9), ("generate", 10**15), ("generate", 10**7),
                                        ("batch", 10**9), ("sample", 10**4000)],
                         ids=["sample-1e9", "generate-1e15", "generate-1e7", "batch-1e9", "sample-1e4000"])
def test_a_batch_too_large_for_memory_is_told_so_before_anything_counts_its_songs(tmp_path, door, batch):
    """The memory check comes before every check that counts songs: --batch 1e9 was refused as a disk
    too small for the codes, 1e15 ended in a MemoryError building a list per song, 1e7 spent minutes
    checking 1e7 output paths, a jobs line's 1e9 continuations hung the driver, and 1e4000 songs (more
    than a float holds) ended in an OverflowError while printing the size."""
    long_song = tmp_path / "long.safetensors"
    save_codes(long_song, torch.zeros(2, 8, 20, dtype=torch.long), torch.tensor([20, 18]))
    song = ["--tags", "piano", "--lyrics", "la la", "--seconds", "3", "--device", "cpu", "--batch", str(batch),
            "--continue-from", str(long_song)]
    if door == "batch":
        jobs = tmp_path / "jobs.jsonl"
        jobs.write_text(json.dumps({"id": "a", "tags": "piano", "lyrics": "la la", "seconds": 3, "seed": 1,
                                    "batch": batch, "continue_from": "long.safetensors"}) + "\n")
        argv = ["batch", str(jobs), "--model-dir", str(CKPT), "--out", str(tmp_path / "out"), "--device", "cpu"]
    elif door == "sample":
        argv = ["sample", "--model-dir", str(CKPT), *song, "--codes-out", str(tmp_path / "out.safetensors")]
    else:
        argv = ["generate", "--model-dir", str(CKPT), *song, "--out", str(tmp_path / "out.wav")]
    done = subprocess.run([sys.executable, "-m", "heartmula_core", *argv], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    songs = "a 4000-digit number" if batch > 10**300 else str(2 * batch)
    assert done.returncode == 2 and f"Sampling {songs} song(s) of up to 3 s" in done.stderr, done.stderr
    assert ("Lower 'batch'" if door == "batch" else "Lower --batch") in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == (["jobs.jsonl"] if door == "batch" else []) + ["long.safetensors"]


def test_a_lyrics_file_too_big_for_any_prompt_is_refused_unread(tmp_path):
    huge = tmp_path / "lyrics.txt"
    with open(huge, "wb") as f:  # 100 MB, sparse: nothing is written to disk
        f.truncate(100 * 10**6)
    rc, added, err = run_measured("sample", "--model-dir", str(CKPT), "--tags", "piano", "--lyrics", str(huge),
                                  "--seconds", "2", "--device", "cpu", "--codes-out", str(tmp_path / "o.safetensors"))
    line = one_error(err)
    assert rc == 2 and "100.0 MB" in line and "cannot fit" in line and str(huge) in line, line
    assert added < PEAK_MARGIN_MB, f"the refusal added {added} MB to the peak"


def test_a_jobs_file_with_huge_lyrics_is_refused_line_by_line(tmp_path):
    huge = tmp_path / "songs" / "huge.txt"
    huge.parent.mkdir()
    with open(huge, "wb") as f:
        f.truncate(100 * 10**6)
    jobs = tmp_path / "jobs.jsonl"
    good = {"id": "a", "tags": "piano", "lyrics": "la la", "seconds": 2, "seed": 1}
    lines = [good, {**good, "id": "b", "lyrics": "songs/huge.txt"},  # relative to the jobs file
             {**good, "id": "c", "lyrics": "la " * (MAX_TEXT_BYTES // 2)}]  # 1.5 MB in the line itself
    jobs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    rc, added, err = run_measured("batch", str(jobs), "--model-dir", str(CKPT), "--out", str(tmp_path / "out"),
                                  "--device", "cpu")
    assert rc == 2 and "2 problem(s); nothing was run" in err, err
    assert re.search(r"line 2: The lyrics in .*huge.txt are 100.0 MB", err), err
    assert "line 3: The lyrics are 1.6 million characters" in err, err
    assert added < PEAK_MARGIN_MB + 30, f"the refusal added {added} MB to the peak"  # + the 1.5 MB line, parsed
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("door", ["sample", "node"])
def test_a_prompt_longer_than_the_context_is_told_so(tmp_path, door, capsys, pack):
    lyrics = "la " * 3000  # ~3000 tokens for the tiny LM's 2048 positions
    if door == "sample":
        from heartmula_core.__main__ import main

        assert main(["sample", "--model-dir", str(CKPT), "--tags", "piano", "--lyrics", lyrics, "--seconds", "2",
                     "--device", "cpu", "--codes-out", str(tmp_path / "o.safetensors")]) == 2
        message = capsys.readouterr().err
    else:
        message = node_error(pack, lyrics)
    assert re.search(r"The prompt \(tags and lyrics\) is \d+ tokens, but the model's context holds 2048", message)
    assert "keeps 0 frames" not in message and "song to continue" not in message


def node_error(pack, lyrics: str) -> str:
    """The Sampler node's error for a prompt of ``lyrics`` (the LM loaded by the core, as a node value)."""
    from heartmula_pack.heartmula_core.errors import HeartMuLaError
    from heartmula_pack.heartmula_core.lm.load import load_lm
    from heartmula_pack.heartmula_core.lm.prompt import build_prompt
    from heartmula_pack.nodes import sampler

    loaded = load_lm(CKPT / "HeartMuLa-oss-3B")
    prompt = build_prompt(loaded.tokenizer, loaded.gen_config, "piano", lyrics)

    class NoMemoryMoves:  # the check must refuse before the node asks ComfyUI for memory
        folder, dtype, config, gen_config = CKPT / "HeartMuLa-oss-3B", torch.float32, loaded.config, loaded.gen_config
        name = "HeartMuLa-oss-3B"

        def check_memory(self, *_):
            pass

        def ready(self, needed):
            raise AssertionError("memory was requested for a prompt that cannot fit")

    with pytest.raises(HeartMuLaError) as info:
        sampler.HeartMuLaSampler.execute(lm=NoMemoryMoves(), prompt=prompt, seed=0, seconds=2.0, temperature=1.0,
                                         top_k=50, cfg_scale=1.5, batch_size=1)
    return str(info.value)
