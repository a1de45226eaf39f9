"""Batch generation from a jobs file (``python -m heartmula_core batch``), embedded or on Ray.

jobs.py parses and checks the JSONL jobs file; manifest.py keeps OUTDIR/manifest.jsonl (resume);
worker.py makes songs (LM then codec, models loaded once); local.py and ray_runner.py run workers;
outputs.py writes a job's files; progress.py is the run's one bar; driver.py ties them together.
The subcommand is cli/batch.py.
Nothing here imports ray unless ``--ray`` is used.
"""
