"""Peak of live tensor memory on the CPU, which torch does not count the way CUDA's
max_memory_allocated does: replay the profiler's allocation and free events in time order."""

from __future__ import annotations

from typing import Callable

from torch.profiler import ProfilerActivity, profile


def peak_live_bytes(run: Callable[[], object]) -> int:
    """Highest sum of bytes allocated and not yet freed while ``run()`` executes."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    changes = sorted((e.time_range.start, e.self_cpu_memory_usage) for e in prof.events() if e.self_cpu_memory_usage)
    live = peak = 0
    for _, delta in changes:
        live += delta
        peak = max(peak, live)
    return peak
