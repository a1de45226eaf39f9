"""Songs per hour of `batch`: embedded vs Ray workers, and one job of B songs vs B jobs of one.

    python -m benchmarks.bench_batch [--sizes tiny,medium] [--songs 8] [--seconds 10] [--threads 1,2]
                                     [--modes local,ray,grouped] [--ray-workers 2] [--group 4]

Checkpoint folders with random weights are written to a temporary folder (tiny: the test LM and
codec; medium: benchmarks/lm_sizes.MEDIUM and bench_codec.MEDIUM). The LM's audio vocabulary is
cut to the codec's codebook and its end-of-audio id is out of reach, so every song runs its full
length. "local": the embedded runner, a row per --threads count; "ray": a local Ray cluster with
--ray-workers workers of 1 CPU and 1 thread each; "grouped": embedded, the same songs as jobs of
``batch`` = --group songs. Rates count steady running (after the models are loaded and, on Ray,
the cluster and its workers are up); start-up is its own column.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from heartmula_core.batch.driver import BatchOptions, run_batch, make_runner

from .bench_codec import MEDIUM as MEDIUM_CODEC, TINY as TINY_CODEC, write_random_checkpoint
from .lm_sizes import SIZES
from .random_lm import random_lm
from .table import print_table

TINY_CKPT = Path(__file__).resolve().parents[1] / "tests" / "data" / "tiny" / "ckpt"
LYRICS = "[Verse]\nla la la, the night is long\n[Chorus]\nsing it back to me\n"


def write_model_dir(root: Path, size: str) -> Path:
    """LM + codec folders in the released layout; every song runs its full length."""
    from safetensors.torch import save_file

    codebook = 64 if size == "tiny" else MEDIUM_CODEC["codebook_size"]
    # the LM samples codec codes only (no special ids, which the codec would refuse); end of audio is never drawn
    config = dataclasses.replace(SIZES[size], audio_vocab_size=codebook)
    lm = root / "HeartMuLa-oss-3B"
    lm.mkdir(parents=True)
    model = random_lm(config, "cpu", torch.float32)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, lm / "model.safetensors")
    lm_config = {"model_type": "heartmula", "backbone": dataclasses.asdict(config.backbone),
                 "decoder": dataclasses.asdict(config.decoder), "text_vocab_size": config.text_vocab_size,
                 "audio_vocab_size": config.audio_vocab_size, "audio_num_codebooks": config.audio_num_codebooks}
    (lm / "config.json").write_text(json.dumps(lm_config))
    shutil.copy(TINY_CKPT / "tokenizer.json", root / "tokenizer.json")
    gen = json.loads((TINY_CKPT / "gen_config.json").read_text())
    (root / "gen_config.json").write_text(json.dumps({**gen, "audio_eos_id": config.audio_vocab_size + 1}))
    if size == "tiny":
        shutil.copytree(TINY_CODEC, root / "HeartCodec-oss")
    else:
        write_random_checkpoint(root / "HeartCodec-oss", MEDIUM_CODEC)
    return root


def write_jobs(path: Path, songs: int, seconds: float, group: int = 1) -> Path:
    lines = [{"id": f"s{i}", "tags": "piano,happy", "lyrics": LYRICS, "seconds": seconds, "seed": i, "batch": group}
             for i in range(songs // group)]
    path.write_text("".join(json.dumps(j) + "\n" for j in lines))
    return path


class TimedRunner:
    """Wraps a runner to time its start (model loading, Ray cluster and workers) apart from the run."""

    def __init__(self, runner):
        self.runner, self.start_seconds = runner, 0.0

    def start(self):
        t = time.perf_counter()
        names = self.runner.start()
        self.start_seconds = time.perf_counter() - t
        return names

    def run(self, jobs):
        return self.runner.run(jobs)

    def close(self):
        self.runner.close()


def measure(size: str, mode: str, threads: int, model_dir: Path, work: Path, args) -> dict:
    group = args.group if mode == "grouped" else 1
    name = f"{mode}-{threads}"
    jobs = write_jobs(work / f"{name}.jsonl", args.songs, args.seconds, group)
    opts = BatchOptions(jobs=str(jobs), model_dir=str(model_dir), out=str(work / f"out-{name}"), device="cpu",
                        threads=threads, ray="local" if mode == "ray" else None,
                        workers=args.ray_workers if mode == "ray" else None)
    runner = TimedRunner(make_runner(opts))
    t = time.perf_counter()
    summary = run_batch(opts, runner=runner, say=lambda m: None)
    total = time.perf_counter() - t
    run_seconds = total - runner.start_seconds
    entries = summary.finished
    songs = sum(len(e["audio"]) for e in entries)
    per_job = len(entries) / songs  # per-song times below divide each job's time by its songs
    return {
        "size": size, "mode": f"{mode} ({args.ray_workers} workers x 1 thread)" if mode == "ray" else
        f"{mode}{f' (batch {group})' if group > 1 else ''} ({threads} thread{'s' if threads > 1 else ''})",
        "songs": songs, "start-up s": round(runner.start_seconds, 1), "run s": round(run_seconds, 1),
        "songs/hour": round(3600 * songs / run_seconds),
        "LM s/song": round(statistics.mean(e["lm_seconds"] for e in entries) * per_job, 2),
        "codec s/song": round(statistics.mean(e["codec_seconds"] for e in entries) * per_job, 2),
        "write s/song": round(statistics.mean(e["write_seconds"] for e in entries) * per_job, 3),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="tiny,medium")
    ap.add_argument("--modes", default="local,ray,grouped")
    ap.add_argument("--songs", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", default="1,2", help="torch threads of the embedded runs (one row each)")
    ap.add_argument("--ray-workers", type=int, default=2)
    ap.add_argument("--group", type=int, default=4, help="songs per job in the grouped mode")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            model_dir = write_model_dir(Path(tmp) / size / "models", size)
            for mode in args.modes.split(","):
                for threads in [1] if mode == "ray" else [int(t) for t in args.threads.split(",")]:
                    rows.append(measure(size, mode, threads, model_dir, Path(tmp) / size, args))
                    print(rows[-1], flush=True)  # a long run shows its rows as they come
    print_table(rows, title=f"batch, {args.songs} songs of {args.seconds:g} s, CPU, torch {torch.__version__}")


if __name__ == "__main__":
    main()
