"""Ray runner: one actor per GPU (or N CPU actors), each holding a SongMaker; the driver writes.

Workers return codes and the float waveform through Ray's object store instead of writing files:
a cluster's nodes need not share a file system with the driver, and with one writer the atomic
renames, the manifest and resume stay the embedded runner's code, unchanged. The cost is moving
~0.4 MB per second of audio (float32 stereo 48 kHz) to the driver, small next to the seconds of
compute each second of audio takes.

Scheduling: each actor holds at most ``in_flight`` jobs (2: the next job is already queued on the
actor while the driver writes the last result). A job whose actor dies (``RayActorError``) goes back
to the front of the queue and a replacement actor is started, so nothing is lost and, since only the
driver writes and only on a result, nothing is written twice. A job that raises is retried once.
``ray`` is imported here only, never at import of heartmula_core or by the nodes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Iterable, Iterator

from ..errors import HeartMuLaError
from .jobs import Job
from .worker import Outcome, SongMaker, WorkerSpec, describe_error

TRIES = 2  # a job that raised is retried once
LOSSES = 3  # a job under which this many workers died fails (it may be what kills them)


def import_ray():
    try:
        import ray
    except ImportError:
        raise HeartMuLaError("--ray needs Ray, an optional extra: pip install 'comfyui-heartmula[ray]' "
                             "(or pip install ray).") from None
    return ray


class SongWorker:
    """The actor class (wrapped with ray.remote at start): a SongMaker that lives in a Ray worker."""

    def __init__(self, spec: WorkerSpec):
        self.maker = SongMaker(spec)

    def describe(self) -> str:
        return self.maker.describe()

    def make(self, job: Job):
        return self.maker.make(job)


def ship_code() -> dict:
    """Runtime env that uploads this heartmula_core to the cluster: the workers run the driver's code,
    also on nodes where the package is not installed (Ray allows uploads only at ray.init)."""
    import heartmula_core

    return {"py_modules": [heartmula_core]}


def _init_failure(exc: BaseException) -> str:
    """The last meaningful line of an actor's creation traceback (the HeartMuLaError's message)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error:" in ln]
    return (errors or lines or [repr(exc)])[-1]


class RayRunner:
    def __init__(self, spec: WorkerSpec, address: str = "local", workers: int | None = None,
                 cpus_per_worker: int = 1, in_flight: int = 2):
        self.spec, self.address, self.workers = spec, address, workers
        self.cpus_per_worker, self.in_flight = cpus_per_worker, in_flight
        self.actors: list = []  # live actors (tests kill one with ray.kill)
        self.load: dict = {}  # actor -> jobs queued on it
        self.started_ray = False
        self.replacements = 0

    def _connect(self):
        ray = import_ray()
        if not ray.is_initialized():  # else the caller's session, whose workers must import heartmula_core
            ray.init(address=None if self.address == "local" else self.address, runtime_env=ship_code(),
                     include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            self.started_ray = True
        return ray

    def _plan(self, ray) -> None:
        """GPU workers (one per GPU) unless --device cpu or the cluster has none; else --workers CPU workers."""
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
        use_gpu = self.spec.device in ("auto", "cuda") and gpus > 0
        count = self.workers or (gpus if use_gpu else 0)
        if count < 1:
            raise HeartMuLaError("The Ray cluster has no GPU (or --device cpu was given): give --workers N to run "
                                 "N CPU workers, each using --cpus-per-worker CPUs.")
        have, need = (gpus, count) if use_gpu else (cpus, count * self.cpus_per_worker)
        if need > have:
            raise HeartMuLaError(f"{count} worker(s) need {need} {'GPU' if use_gpu else 'CPU'}s but the Ray cluster "
                                 f"has {have}; ask for fewer --workers (or --cpus-per-worker).")
        threads = self.spec.threads or (None if use_gpu else self.cpus_per_worker)
        self.count = count
        self.worker_spec = replace(self.spec, device="cuda" if use_gpu else "cpu", threads=threads)
        env = {"OMP_NUM_THREADS": str(threads)} if threads else {}
        self.options = dict(num_gpus=1, num_cpus=1) if use_gpu else dict(num_cpus=self.cpus_per_worker)
        self.options["runtime_env"] = {"env_vars": env}

    def _new_actor(self, ray, index: int):
        actor_class = ray.remote(SongWorker).options(max_restarts=0, **self.options)
        return actor_class.remote(replace(self.worker_spec, label=f"ray-{index}"))

    def start(self) -> list[str]:
        ray = self._connect()
        self._plan(ray)
        self.actors = [self._new_actor(ray, i) for i in range(self.count)]
        self.load = {a: 0 for a in self.actors}
        try:
            return ray.get([a.describe.remote() for a in self.actors])
        except ray.exceptions.RayActorError as exc:
            raise HeartMuLaError(f"A Ray worker could not load the models: {_init_failure(exc)}") from None

    def _lose(self, ray, actor) -> None:
        """Forget a dead actor and start a replacement (at most twice the worker count over a run)."""
        if actor not in self.load:
            return
        del self.load[actor]
        self.actors.remove(actor)
        if self.replacements < 2 * self.count:
            self.replacements += 1
            fresh = self._new_actor(ray, self.count + self.replacements - 1)
            self.actors.append(fresh)
            self.load[fresh] = 0

    def _submit(self, queue: deque, in_flight: dict) -> None:
        while queue and self.load:
            actor = min(self.actors, key=self.load.get)
            if self.load[actor] >= self.in_flight:
                return
            job, attempt, losses = queue.popleft()
            in_flight[actor.make.remote(job)] = (actor, job, attempt, losses)
            self.load[actor] += 1

    def run(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        ray = import_ray()
        queue = deque((job, 1, 0) for job in jobs)
        in_flight: dict = {}
        while queue or in_flight:
            self._submit(queue, in_flight)
            if not in_flight:
                for job, attempt, _ in queue:
                    yield Outcome(job, attempt, error="no Ray worker is left to run it", final=True)
                return
            [ref], _ = ray.wait(list(in_flight), num_returns=1)
            actor, job, attempt, losses = in_flight.pop(ref)
            if actor in self.load:
                self.load[actor] -= 1
            try:
                result = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                self._lose(ray, actor)
                if losses + 1 >= LOSSES:
                    yield Outcome(job, attempt, error=f"{LOSSES} workers died running it", final=True)
                else:
                    yield Outcome(job, attempt, error=_init_failure(exc), worker_lost=True)
                    queue.appendleft((job, attempt, losses + 1))
                continue
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
                yield Outcome(job, attempt, error=describe_error(cause), final=attempt >= TRIES)
                if attempt < TRIES:
                    queue.append((job, attempt + 1, losses))
                continue
            yield Outcome(job, attempt, result=result)

    def close(self) -> None:
        ray = import_ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self.started_ray:
            ray.shutdown()
            self.started_ray = False
