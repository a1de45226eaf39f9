"""One worker: the LM and the codec loaded once, then job after job through the song path.

The same class runs embedded (batch/local.py) and inside a Ray actor (batch/ray_runner.py); it
never writes files: it returns codes and the float waveform, and the driver alone writes outputs
and the manifest. Each job runs the song path ``generate`` runs (song.plan_song, song.make_song)
with the job's settings, so a job gives exactly what ``python -m heartmula_core generate`` (or
``sample`` and ``decode``) gives with the same settings, whichever worker ran it and whatever else
was in the jobs file.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import numpy as np
import torch

from .jobs import NAMES, Job
from .manifest import run_weights


@dataclass(frozen=True)
class WorkerSpec:
    model_dir: str
    device: str = "auto"  # auto | cpu | cuda | mps
    dtype: str = "auto"  # LM dtype (auto: bf16 on GPU, fp32 on CPU); the codec stays fp32 unless given
    threads: int | None = None  # torch CPU threads (None: leave torch's default)
    offload: bool = False  # keep only the model in use on the device, the other in CPU memory
    label: str = "local"
    weight_dtype: str = "default"  # how both models hold their weights (fp8: the LM and the codec's transformer)
    codec_dir: str | None = None  # the codec folder; None: the one in or beside model_dir
    loras: tuple = ()  # (file or folder, strength) merged into the LM


@dataclass
class SongResult:
    codes: np.ndarray  # [B, 8, T] int64
    lengths: np.ndarray  # [B] int64, frames
    waveform: np.ndarray  # [B, 2, N] float32
    samples: list[int]  # per song, the waveform's real length
    sample_rate: int
    prompt_tokens: int
    lm_seconds: float
    codec_seconds: float
    worker: str
    weights: dict | None = None  # how the worker held the weights (manifest.run_weights)


class SongMaker:
    """Loads the models once (``__init__``), then ``make(job)`` per job."""

    def __init__(self, spec: WorkerSpec):
        from ..checkpoints.folders import codec_folder_for
        from ..quant.storage import WeightStorage
        from ..runtime import pick_device, pick_dtype
        from ..song import CodecFolder, LMFolder

        if spec.threads:
            torch.set_num_threads(spec.threads)
        self.spec = spec
        self.device = pick_device(spec.device)
        codec_dir = codec_folder_for(spec.model_dir, spec.codec_dir)  # fail before the slow LM load if it is missing
        storage = WeightStorage.named(spec.weight_dtype)
        park = torch.device("cpu") if spec.offload else self.device
        self.lm = LMFolder(spec.model_dir, self.device, pick_dtype(spec.dtype, self.device), storage, spec.loras)
        self.codec = CodecFolder(codec_dir, park, pick_dtype(spec.dtype, self.device, default_gpu=torch.float32),
                                 storage)
        self.lm.load(), self.codec.load()
        self.name = f"{spec.label} {socket.gethostname()}:{os.getpid()} {self.device.type}"

    def describe(self) -> str:
        return self.name

    def _on_device(self, active: torch.nn.Module, idle: torch.nn.Module) -> None:
        """With offload, the idle model waits in CPU memory (the nodes' LM/codec swap on a small GPU)."""
        if self.spec.offload and self.device.type != "cpu":
            idle.to("cpu")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            active.to(self.device)

    def make(self, job: Job) -> SongResult:
        from ..song import make_song, plan_song, prompt_for, read_start

        prompt = prompt_for(self.lm, job.tags, job.lyrics)
        plan = plan_song(self.lm, prompt, job.settings, read_start(job.settings, NAMES),
                         self.codec.config.codebook_size, NAMES)
        self._on_device(self.lm.model, self.codec.model)
        song = make_song(self.lm, self.codec, plan, between=lambda: self._on_device(self.codec.model, self.lm.model))
        audio = song.audio
        return SongResult(song.codes.numpy(), song.lengths.numpy(), audio.waveform.numpy(), audio.samples,
                          audio.sample_rate, prompt.length, song.lm_seconds, song.codec_seconds, self.name,
                          run_weights(self.spec.weight_dtype, self.spec.loras))


@dataclass
class Outcome:
    """What a runner reports for one attempt of one job: a result, or an error (final when no retry is left)."""

    job: Job
    attempt: int
    result: SongResult | None = None
    error: str | None = None
    final: bool = False
    worker_lost: bool = False  # the worker died under the job (it runs again elsewhere, not counted as a try)


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip() or repr(exc)
    return f"{type(exc).__name__}: {text}"
