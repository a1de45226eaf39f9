"""A batch run from start to end: check everything, skip what is done, run the rest, write as results come.

Order matters for the promise "errors before any model loads": the jobs file, the audio format,
the counts, the output folder whole (out_folder.py: a folder, its manifest and lock files of their
own, leftovers of a killed run, no file of the user's where a job would write) and every prompt's
length (with the tokenizer and config only) are all checked before a runner loads a model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HeartMuLaError
from ..settings import check_loras, whole
from .jobs import NAMES, Job, describe_problems, parse_jobs
from .manifest import Manifest, OutputLock, check_against_manifest, remove_partials, run_weights
from .out_folder import check_out_folder, refuse_foreign
from .outputs import check_format, record_job
from .progress import RunProgress
from .worker import WorkerSpec


MAX_COUNT = 4096  # threads, workers or CPUs per worker


@dataclass
class BatchOptions:
    jobs: str
    model_dir: str
    out: str
    format: str = "flac"
    device: str = "auto"
    dtype: str = "auto"
    threads: int | None = None
    offload: bool = False
    defaults: dict = field(default_factory=dict)  # command-line defaults of the optional job fields
    download: bool = False  # fetch the official models the model folder lacks (checkpoints/fetch.py)
    source: str | None = None  # where from: hf, modelscope (None: HEARTMULA_DOWNLOAD_SOURCE, else hf)
    ray: str | None = None  # None: embedded; "local": start a local cluster; else an address ("auto", host:port)
    workers: int | None = None
    cpus_per_worker: int = 1
    weight_dtype: str = "default"  # how the workers hold both models' weights (--weight-dtype)
    codec_dir: str | None = None  # the codec folder (--codec-dir); default: the one in or beside model_dir
    loras: tuple = ()  # (file or folder, strength) merged into the LM for every job (--lora)


@dataclass
class BatchSummary:
    total: int = 0
    skipped: int = 0
    finished: list = field(default_factory=list)  # manifest entries written by this run
    failed: list = field(default_factory=list)  # (job, error)
    jobs_rerun: int = 0  # jobs whose worker died under them (run again elsewhere)
    seconds: float = 0.0
    workers: list = field(default_factory=list)

    def line(self) -> str:
        songs = sum(len(e["audio"]) for e in self.finished)
        rate = 3600.0 * songs / self.seconds if self.seconds > 0 else 0.0
        parts = [f"{len(self.finished)} job(s) done ({songs} songs, {rate:.0f} songs/hour)",
                 f"{self.skipped} already in the manifest", f"{len(self.failed)} failed"]
        if self.jobs_rerun:
            parts.append(f"{self.jobs_rerun} job(s) rerun after their worker died")
        return f"batch: {self.total} jobs: " + ", ".join(parts) + f"; {self.seconds:.1f} s"


def check_prompts_fit(jobs: list[Job], lm, jobs_path: str, codebook_size: int | None = None) -> None:
    """Every pending job's song plan, with ``lm``'s tokenizer and config only (no weights): prompt plus
    length against the context, the songs to continue against the LM, the run's LoRAs against the LM
    (read by ``lm``) and, when ``lm`` checks memory, what the job needs on this machine."""
    from ..song import plan_song, prompt_for, read_start

    problems = []
    for job in jobs:
        try:
            plan_song(lm, prompt_for(lm, job.tags, job.lyrics), job.settings, read_start(job.settings, NAMES),
                      codebook_size, NAMES)
        except HeartMuLaError as exc:
            problems.append((job.line, f"job '{job.id}': {exc}"))
    if problems:
        raise HeartMuLaError(describe_problems(jobs_path, problems))


def checking_lm(opts: BatchOptions):
    """The LM the driver plans every job with. Run here (no --ray), the worker uses this machine's
    device, so its memory is checked now, as `generate` checks it (a 'batch' of a million songs is a
    problem line, not a job that fails once the models are loaded); on Ray each worker checks its own."""
    import torch

    from ..quant.storage import WeightStorage
    from ..runtime import pick_device, pick_dtype
    from ..song import LMFolder, LMForChecks

    if opts.ray is not None:
        return LMForChecks(opts.model_dir, torch.device("cpu"), torch.float32, loras=opts.loras)
    device = pick_device(opts.device)
    return LMFolder(opts.model_dir, device, pick_dtype(opts.dtype, device), WeightStorage.named(opts.weight_dtype),
                    opts.loras)


def make_runner(opts: BatchOptions):
    spec = WorkerSpec(opts.model_dir, opts.device, opts.dtype, opts.threads, opts.offload,
                      weight_dtype=opts.weight_dtype, codec_dir=opts.codec_dir, loras=opts.loras)
    if opts.ray is None:
        from .local import LocalRunner

        return LocalRunner(spec)
    from .ray_runner import RayRunner

    return RayRunner(spec, opts.ray, opts.workers, opts.cpus_per_worker)


def _prepare(opts: BatchOptions, jobs: list[Job], out: Path, summary: BatchSummary, lock: OutputLock,
             say) -> tuple[list[Job], Manifest]:
    leftovers = remove_partials(out)
    if leftovers:
        say(f"batch: removed {len(leftovers)} unfinished temporary file(s) of an earlier run")
    manifest = Manifest(out)
    done = manifest.load()
    check_against_manifest(jobs, done, manifest.path, opts.format, run_weights(opts.weight_dtype, opts.loras))
    recorded = lock.owned & {name for entry in done.values() for name in [*entry.get("audio", []), entry.get("codes")]
                             if isinstance(name, str)}
    if recorded:  # a stop between a job's line and clearing the lock: the manifest owns them
        lock.writing(sorted(recorded), done=True)
    pending = [j for j in jobs if j.id not in done]
    refuse_foreign(out, pending, opts.format, lock.owned)
    summary.skipped = len(jobs) - len(pending)
    if pending:
        check_models(opts, pending, say)
    return pending, manifest


def check_counts(opts: BatchOptions) -> None:
    """``--threads``, ``--workers``, ``--cpus-per-worker``: whole numbers from 1 to MAX_COUNT when given
    (torch takes a thread count of 32 bits; a count beyond any machine is a typo)."""
    for value, flag in ((opts.threads, "--threads"), (opts.workers, "--workers"),
                        (opts.cpus_per_worker, "--cpus-per-worker")):
        if value is not None:
            whole(value, flag, 1, MAX_COUNT, "")


def check_models(opts: BatchOptions, pending: list[Job], say) -> None:
    """The models (fetched first with ``download``), prompt lengths and the codec folder, from this
    machine's copy of the model folder. On Ray the folder may exist on the workers only: then the
    workers find these problems."""
    from ..checkpoints.fetch import fetch_models
    from ..checkpoints.folders import codec_folder_for
    from ..codec.config import CodecConfig

    if opts.ray is not None and not opts.download and not Path(opts.model_dir).expanduser().exists():
        say(f"batch: {opts.model_dir} is not on this machine; prompt lengths are checked on the workers")
        return
    fetch_models(opts.model_dir, opts.download, say=say, with_codec=opts.codec_dir is None,
                 source=opts.source)
    codec = codec_folder_for(opts.model_dir, opts.codec_dir, " with --codec-dir (the codec folder to use)")
    check_prompts_fit(pending, checking_lm(opts), opts.jobs, CodecConfig.from_folder(codec).codebook_size)


def run_batch(opts: BatchOptions, runner=None, on_recorded=None, say=print) -> BatchSummary:
    """Run every job not yet in OUTDIR/manifest.jsonl. ``on_recorded(entry, runner)`` follows each write."""
    out = Path(opts.out).expanduser()
    summary = BatchSummary()
    start = time.perf_counter()
    jobs = parse_jobs(opts.jobs, opts.defaults)  # before anything touches the output folder
    summary.total = len(jobs)
    check_format(opts.format)
    check_loras(opts.loras, "--lora")
    check_counts(opts)
    check_out_folder(out)
    with OutputLock(out) as lock:
        with lock.undone_if_stopped():  # refused before any job: the folder is left as it was found
            pending, manifest = _prepare(opts, jobs, out, summary, lock, say)
        if pending:
            runner = runner or make_runner(opts)
            try:
                with lock.undone_if_stopped():
                    summary.workers = runner.start()
                _consume(runner, pending, out, manifest, lock, opts, summary, on_recorded)
            finally:
                runner.close()
    summary.seconds = time.perf_counter() - start
    return summary


def _consume(runner, pending: list[Job], out: Path, manifest: Manifest, lock: OutputLock, opts: BatchOptions,
             summary: BatchSummary, on_recorded) -> None:
    """Write each result as it arrives; report failures, retries and lost workers above the bar."""
    progress = RunProgress(sum(j.batch for j in pending))
    try:
        for outcome in runner.run(pending):
            job = outcome.job
            if outcome.result is not None:
                entry = record_job(out, manifest, job, outcome.result, opts.format, outcome.attempt, lock)
                summary.finished.append(entry)
                progress.advance(job.batch)
                if on_recorded:
                    on_recorded(entry, runner)
            elif outcome.worker_lost:
                summary.jobs_rerun += 1
                progress.say(f"batch: job '{job.id}' lost its worker ({outcome.error}); running it again")
            elif outcome.final:
                summary.failed.append((job, outcome.error))
                progress.say(f"batch: job '{job.id}' (line {job.line}) failed, giving up: {outcome.error}")
            else:
                progress.say(f"batch: job '{job.id}' (line {job.line}) failed, retrying once: {outcome.error}")
    finally:
        progress.close()
