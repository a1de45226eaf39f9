"""The driver's writes for one finished job: audio, codes, then its manifest line (last).

Audio and codes go through the command line's writers (``audio_files.write_audio``,
``codes.save_codes``), which write a temporary file and rename it, so a job's files are either
absent or complete; the manifest line, appended after both, is what marks the job done. Before
the files, the lock file records them as the run's (manifest.OutputLock), so a rerun after a kill
between the two replaces them rather than refusing them as a user's.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ..audio_files import writable_format, write_audio
from ..codes import save_codes
from ..errors import HeartMuLaError
from .jobs import Job
from .manifest import Manifest, OutputLock, prompt_digest
from .out_folder import job_files, refuse_before_writing
from .worker import SongResult

FORMATS = ("flac", "wav", "mp3")


def check_format(fmt: str) -> None:
    """Fail before any model loads when this soundfile cannot write ``fmt`` (MP3 needs libsndfile >= 1.1)."""
    if fmt not in FORMATS:
        raise HeartMuLaError(f"--format {fmt}: use one of {', '.join(FORMATS)}.")
    writable_format("." + fmt, f"--format {fmt}")


def _tensor(array: np.ndarray) -> torch.Tensor:
    """Arrays from Ray's object store are read-only; torch wants writable memory (copied only then)."""
    return torch.from_numpy(np.require(array, requirements="W"))


def codes_name(job: Job) -> str:
    return f"{job.id}.codes.safetensors"


def write_job(out_dir: Path, job: Job, result: SongResult, fmt: str) -> tuple[list[str], float]:
    """Audio file(s) and the codes file of one job; returns their names and the seconds it took."""
    start = time.perf_counter()
    paths = write_audio(out_dir / f"{job.id}.{fmt}", _tensor(result.waveform), result.samples, result.sample_rate)
    save_codes(out_dir / codes_name(job), _tensor(result.codes), _tensor(result.lengths))
    return [p.name for p in paths], time.perf_counter() - start


def manifest_entry(job: Job, result: SongResult, audio: list[str], write_seconds: float, attempts: int) -> dict:
    return {
        "id": job.id,
        "line": job.line,
        "audio": audio,
        "codes": codes_name(job),
        "settings": job.recorded(),
        "prompt_sha256": prompt_digest(job),
        "prompt_tokens": result.prompt_tokens,
        "lengths_frames": [int(n) for n in result.lengths],
        "audio_seconds": [round(n / result.sample_rate, 4) for n in result.samples],
        "lm_seconds": round(result.lm_seconds, 3),
        "codec_seconds": round(result.codec_seconds, 3),
        "write_seconds": round(write_seconds, 3),
        "worker": result.worker,
        "weights": result.weights,
        "attempts": attempts,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def record_job(out_dir: Path, manifest: Manifest, job: Job, result: SongResult, fmt: str, attempts: int,
               lock: OutputLock) -> dict:
    """The job's files (never replacing one no run of this folder wrote: a user may have put one
    there since the run started), then its manifest line; ``lock`` lists the files in between."""
    names = job_files(job.output_stems(), job.id, fmt)
    refuse_before_writing(out_dir, job, names, lock.owned)
    lock.writing(names)
    audio, write_seconds = write_job(out_dir, job, result, fmt)
    entry = manifest_entry(job, result, audio, write_seconds, attempts)
    manifest.append(entry)
    lock.writing(names, done=True)
    return entry
