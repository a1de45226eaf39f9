"""`batch --ray` on a local Ray cluster (2 CPU workers): the same files as embedded, a killed worker
loses nothing. One Ray session for the module; skipped when ray is not installed."""

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (optional extra: pip install 'comfyui-heartmula[ray]')")

from heartmula_core.batch.driver import BatchOptions, run_batch  # noqa: E402
from heartmula_core.batch.ray_runner import RayRunner, ship_code  # noqa: E402
from heartmula_core.batch.worker import WorkerSpec  # noqa: E402
from heartmula_core.errors import HeartMuLaError  # noqa: E402

from batch_jobs import CKPT, check_complete, manifest_lines, output_files, write_jobs  # noqa: E402


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, runtime_env=ship_code(), include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_files(tmp_path_factory):
    """The six jobs run embedded, one thread (as each 1-CPU Ray worker runs)."""
    tmp = tmp_path_factory.mktemp("local")
    opts = BatchOptions(jobs=str(write_jobs(tmp / "jobs.jsonl")), model_dir=str(CKPT), out=str(tmp / "out"),
                        device="cpu", threads=1)
    run_batch(opts, say=lambda m: None)
    return output_files(tmp / "out")


def _ray_options(tmp_path) -> BatchOptions:
    return BatchOptions(jobs=str(write_jobs(tmp_path / "jobs.jsonl")), model_dir=str(CKPT),
                        out=str(tmp_path / "out"), device="cpu", ray="local", workers=2)


def test_two_ray_workers_write_the_same_files_as_embedded(ray_session, local_files, tmp_path):
    summary = run_batch(_ray_options(tmp_path), say=lambda m: None)
    assert ray.is_initialized()  # the session it found is left to its owner
    out = tmp_path / "out"
    check_complete(out)
    assert output_files(out) == local_files
    workers = {e["worker"].split()[0] for e in manifest_lines(out)}
    assert workers == {"ray-0", "ray-1"} and len(summary.workers) == 2


def test_a_killed_worker_loses_no_job_and_duplicates_none(ray_session, local_files, tmp_path):
    killed = []

    def kill_one(entry, runner):
        if not killed:  # after the first result both workers still have jobs running
            killed.append(runner.actors[0])
            ray.kill(runner.actors[0])

    summary = run_batch(_ray_options(tmp_path), on_recorded=kill_one, say=lambda m: None)
    out = tmp_path / "out"
    check_complete(out)  # six lines, six ids, no partial files
    assert output_files(out) == local_files
    assert summary.jobs_rerun >= 1 and not summary.failed
    assert len(manifest_lines(out)) == 6


def test_cpu_workers_must_be_asked_for_on_a_cluster_without_gpus(ray_session):
    runner = RayRunner(WorkerSpec(str(CKPT), device="cpu"), workers=None)
    with pytest.raises(HeartMuLaError, match="no GPU \\(or --device cpu was given\\): give --workers N"):
        runner.start()
    runner = RayRunner(WorkerSpec(str(CKPT), device="cpu"), workers=3)
    with pytest.raises(HeartMuLaError, match="3 worker\\(s\\) need 3 CPUs but the Ray cluster has 2"):
        runner.start()


def test_a_worker_that_cannot_load_the_models_says_why(ray_session, tmp_path):
    runner = RayRunner(WorkerSpec(str(tmp_path / "missing"), device="cpu"), workers=1)
    try:
        with pytest.raises(HeartMuLaError, match="could not load the models: .*missing.* does not exist"):
            runner.start()
    finally:
        runner.close()
