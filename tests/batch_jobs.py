"""The six jobs the batch tests run on the tiny checkpoints, and helpers to run and inspect a batch."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile

CKPT = Path(__file__).parent / "data" / "tiny" / "ckpt"
SIX_JOBS = [
    {"id": f"song-{i}", "tags": tags, "lyrics": lyrics, "seconds": seconds, "seed": 10 + i, "decode_steps": 3}
    for i, (tags, lyrics, seconds) in enumerate([
        ("piano,happy", "[Verse]\nla la la\n", 2),
        ("rock", "[Verse]\nhey hey\n", 3),
        ("piano,happy", "[Verse]\nla la la\n", 2.5),
        ("jazz,sad", "[Chorus]\noh no\n", 4),
        ("pop", "[Verse]\nsun\n", 2),
        ("rock", "[Verse]\nhey hey\n", 3.5),
    ])
]


def write_jobs(path: Path, jobs=SIX_JOBS) -> Path:
    path.write_text("".join(json.dumps(j) + "\n" for j in jobs), encoding="utf-8")
    return path


def manifest_lines(out: Path) -> list[dict]:
    path = out / "manifest.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def output_files(out: Path) -> dict[str, bytes]:
    """Every audio file's bytes and every codes file's tensors (as bytes), by file name.

    Codes files are compared by content: safetensors writes its metadata in hash-map order, which
    changes from process to process, so two identical codes files need not be identical bytes."""
    from heartmula_core.codes import load_codes

    files = {}
    for p in sorted(out.iterdir()):
        if p.name.startswith("."):
            continue
        if p.suffix == ".flac":
            files[p.name] = p.read_bytes()
        elif p.name.endswith(".codes.safetensors"):
            codes, lengths = load_codes(p)
            files[p.name] = codes.numpy().tobytes() + lengths.numpy().tobytes() + bytes(str(codes.shape), "ascii")
    return files


def check_complete(out: Path, jobs=SIX_JOBS) -> None:
    """One manifest line, one playable audio file and one codes file per job; no leftovers."""
    lines = manifest_lines(out)
    assert sorted(e["id"] for e in lines) == sorted(j["id"] for j in jobs)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([".batch.lock", "manifest.jsonl"] + [f"{j['id']}.flac" for j in jobs]
                           + [f"{j['id']}.codes.safetensors" for j in jobs])
    for entry in lines:
        info = soundfile.info(out / entry["audio"][0])
        assert info.samplerate == 48000 and info.channels == 2
        assert info.frames == entry["lengths_frames"][0] * 3840
