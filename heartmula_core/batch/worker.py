"""One worker: the LM and the codec loaded once, then job after job (sample, then decode).

The same class runs embedded (batch/local.py) and inside a Ray actor (batch/ray_runner.py); it
never writes files: it returns codes and the float waveform, and the driver alone writes outputs
and the manifest. Each job is computed exactly as ``python -m heartmula_core generate`` would with
the same settings (the decode generator is seeded with ``decode_seed``, by default the job's seed),
so a job's files never depend on which worker ran it or what else was in the jobs file.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..codes import samples_for
from .jobs import Job


@dataclass(frozen=True)
class WorkerSpec:
    model_dir: str
    device: str = "auto"  # auto | cpu | cuda | mps
    dtype: str = "auto"  # LM dtype (auto: bf16 on GPU, fp32 on CPU); the codec stays fp32 unless given
    threads: int | None = None  # torch CPU threads (None: leave torch's default)
    offload: bool = False  # keep only the model in use on the device, the other in CPU memory
    label: str = "local"


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


class SongMaker:
    """Loads the models once (``__init__``), then ``make(job)`` per job."""

    def __init__(self, spec: WorkerSpec):
        from ..checkpoints.folders import codec_folder_near
        from ..codec import load_codec
        from ..lm.load import load_lm
        from ..runtime import pick_device, pick_dtype

        if spec.threads:
            torch.set_num_threads(spec.threads)
        self.spec = spec
        self.device = pick_device(spec.device)
        codec_dir = codec_folder_near(spec.model_dir)  # fail before the slow LM load if it is missing
        lm_dtype = pick_dtype(spec.dtype, self.device)
        codec_dtype = pick_dtype(spec.dtype, self.device, default_gpu=torch.float32)
        park = torch.device("cpu") if spec.offload else self.device
        self.lm = load_lm(spec.model_dir, device=self.device, dtype=lm_dtype)
        self.codec = load_codec(codec_dir, device=park, dtype=codec_dtype)
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

    def sample(self, job: Job):
        from ..lm.budget import frames_for_seconds
        from ..lm.generate import generate
        from ..lm.prompt import build_prompt

        self._on_device(self.lm.model, self.codec)
        prompt = build_prompt(self.lm.tokenizer, self.lm.gen_config, job.tags, job.lyrics)
        result = generate(self.lm.model, prompt, max_frames=frames_for_seconds(job.seconds),
                          eos_id=self.lm.gen_config.audio_eos_id, temperature=job.temperature, top_k=job.top_k,
                          cfg_scale=job.cfg, batch_size=job.batch, seed=job.seed, device=self.device)
        return result.codes, result.lengths, prompt.length

    def decode(self, job: Job, codes: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        from ..codec import decode

        self._on_device(self.codec, self.lm.model)
        return decode(self.codec, codes, lengths, steps=job.decode_steps, guidance=job.decode_guidance,
                      generator=torch.Generator().manual_seed(job.decode_seed))

    def make(self, job: Job) -> SongResult:
        t0 = time.perf_counter()
        codes, lengths, prompt_tokens = self.sample(job)
        t1 = time.perf_counter()
        waveform = self.decode(job, codes, lengths)
        t2 = time.perf_counter()
        rate = self.codec.config.sample_rate
        samples = [samples_for(n, rate) for n in lengths.tolist()]
        return SongResult(codes.numpy(), lengths.numpy(), waveform.numpy(), samples, rate, prompt_tokens,
                          t1 - t0, t2 - t1, self.name)


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
