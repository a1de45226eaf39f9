"""`python -m heartmula_core batch JOBS.jsonl --model-dir DIR --out OUTDIR [--ray [ADDRESS]]`."""

from __future__ import annotations

import argparse
import sys

from ..batch.driver import BatchOptions, run_batch
from ..batch.outputs import FORMATS
from ..settings import SongSettings
from .first_run import add_download_option
from .options import add_codec_dir_option, add_device_options, add_lora_option, add_weight_dtype_option

DEFAULTS = SongSettings()

EPILOG = """\
jobs file: one JSON object per line, e.g.
  {"id": "song-1", "tags": "piano,happy", "lyrics": "[Verse] ...", "seconds": 60, "seed": 1}
optional per job: temperature, top_k, cfg, decode_steps, decode_guidance, decode_seed (default: seed),
batch (songs of this prompt sampled together: <id>_0.<fmt>, <id>_1.<fmt>, ...), continue_from (a codes
file, relative to the jobs file: its songs are continued) and keep_seconds (keep only that much of each).
Writes OUTDIR/<id>.<fmt>, OUTDIR/<id>.codes.safetensors and one line per finished job in
OUTDIR/manifest.jsonl; a rerun skips the jobs in the manifest.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("batch", help="many songs from a JSONL jobs file (embedded, or on Ray)",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("jobs", help="JSONL file, one job per line")
    p.add_argument("--model-dir", required=True, help="HeartMuLa download root (LM + codec folders), or the LM folder")
    p.add_argument("--out", required=True, help="output folder (created; holds manifest.jsonl)")
    add_codec_dir_option(p)
    add_download_option(p)
    p.add_argument("--format", default="flac", choices=FORMATS, help="audio format (mp3 needs libsndfile >= 1.1)")
    add_device_options(p, "LM dtype (auto: bf16 on GPU, fp32 on CPU); the codec stays fp32 unless set")
    add_weight_dtype_option(p, "both models' weights (the LM's and the codec transformer's)")
    add_lora_option(p)
    p.add_argument("--threads", type=int, help="torch CPU threads per worker (default: torch's; Ray: --cpus-per-worker)")
    p.add_argument("--offload", action="store_true",
                   help="keep only the model in use on the GPU, the other in CPU memory (small GPUs)")
    defaults = p.add_argument_group("defaults for jobs that do not set them")
    defaults.add_argument("--temperature", type=float, help=f"default {DEFAULTS.temperature}")
    defaults.add_argument("--top-k", type=int, help=f"default {DEFAULTS.top_k}")
    defaults.add_argument("--cfg", type=float, help=f"default {DEFAULTS.cfg_scale}")
    defaults.add_argument("--steps", type=int, help=f"decode steps, default {DEFAULTS.decode_steps}")
    defaults.add_argument("--guidance", type=float, help=f"decode guidance, default {DEFAULTS.decode_guidance}")
    ray = p.add_argument_group("Ray (pip install 'comfyui-heartmula[ray]')")
    ray.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                     help="run on Ray: no ADDRESS starts a local cluster, 'auto' joins the running one, "
                          "or host:port / ray://host:10001")
    ray.add_argument("--workers", type=int, help="worker actors (default: one per GPU in the cluster)")
    ray.add_argument("--cpus-per-worker", type=int, default=1, help="CPUs per CPU worker (default 1)")
    p.set_defaults(func=cmd_batch)


def options_from_args(args) -> BatchOptions:
    defaults = {"temperature": args.temperature, "top_k": args.top_k, "cfg": args.cfg,
                "decode_steps": args.steps, "decode_guidance": args.guidance}
    return BatchOptions(jobs=args.jobs, model_dir=args.model_dir, out=args.out, format=args.format,
                        device=args.device, dtype=args.dtype, threads=args.threads, offload=args.offload,
                        defaults=defaults, download=args.download, ray=args.ray, workers=args.workers,
                        cpus_per_worker=args.cpus_per_worker, weight_dtype=args.weight_dtype,
                        codec_dir=args.codec_dir, source=args.source, loras=tuple(args.lora))


def cmd_batch(args) -> int:
    summary = run_batch(options_from_args(args), say=lambda m: print(m, file=sys.stderr))
    for job, error in summary.failed:
        print(f"failed: {job.id} (line {job.line}): {error}", file=sys.stderr)
    print(summary.line())
    return 1 if summary.failed else 0
