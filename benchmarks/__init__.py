"""Benchmark scripts: each prints a table. Run as modules, e.g. ``python -m benchmarks.bench_lm``."""
