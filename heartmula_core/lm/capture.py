"""Ways to run the frame step: eager, torch.compile, or a CUDA graph replayed every frame.

Each runner is called as ``runner(previous, position, generator) -> frame`` and owns the frame's
noise draw, so the three give the same tokens for the same seed on the same device. The CUDA graph
is captured on the first frame step of a generation (it depends on that generation's caches) with
static input buffers that later frames overwrite in place.
"""

from __future__ import annotations

import torch


class EagerStep:
    def __init__(self, sampler):
        self.sampler = sampler

    def __call__(self, previous: torch.Tensor, position: int) -> torch.Tensor:
        pos = torch.tensor([position], device=self.sampler.device)
        return self.sampler.step(previous, pos, self.sampler.draw_noise())


class CompiledStep(EagerStep):
    """torch.compile of the whole frame step (Inductor); shapes are static within a generation."""

    def __init__(self, sampler, mode: str | None = None):
        super().__init__(sampler)
        # freezing: weights become constants, which lets Inductor prepack them for the CPU GEMM
        self.compiled = torch.compile(sampler.step, dynamic=False, mode=mode, options={"freezing": True})

    def __call__(self, previous, position):
        pos = torch.tensor([position], device=self.sampler.device)
        return self.compiled(previous, pos, self.sampler.draw_noise())


class CudaGraphStep:
    """Capture the frame step once, then replay it: one launch per frame instead of ~1000."""

    def __init__(self, sampler):
        self.sampler = sampler
        self.graph = None

    def _capture(self, previous, position):
        s = self.sampler
        self.previous = previous.clone()
        self.position = torch.tensor([position], device=s.device)
        self.race = s.draw_noise()
        # Warm-up on a side stream (lazy cuBLAS/attention init must not happen during capture). It
        # computes the very step we are about to replay, so its cache writes are rewritten identically.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            s.step(self.previous, self.position, self.race)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = s.step(self.previous, self.position, self.race)

    def __call__(self, previous, position):
        if self.graph is None:
            self._capture(previous, position)
        else:
            if previous.data_ptr() != self.output.data_ptr():
                self.previous.copy_(previous)
            else:
                self.previous.copy_(self.output)
            self.position.fill_(position)
            self.race.exponential_(1.0, generator=self.sampler.generator)
        self.graph.replay()
        return self.output


RUNNERS = {"eager": EagerStep, "compile": CompiledStep, "cuda_graph": CudaGraphStep}


def weights_on(model: torch.nn.Module, device: torch.device) -> bool:
    """False when a host's partial (low-VRAM) load left weights elsewhere: they are copied over per
    call, which a CUDA graph cannot capture."""
    return all(p.device == device for p in model.parameters())


def pick_runner(name: str, device: torch.device, model: torch.nn.Module | None = None) -> str:
    """auto: a CUDA graph on CUDA when every weight is on the GPU, eager otherwise (and on CPU/MPS,
    where compiling costs more than it saves for most sizes: see benchmarks/RESULTS.md)."""
    if name == "auto":
        if device.type == "cuda" and (model is None or weights_on(model, device)):
            return "cuda_graph"
        return "eager"
    if name not in RUNNERS:
        raise ValueError(f"capture must be one of auto, {', '.join(RUNNERS)}; got {name!r}")
    if name == "cuda_graph" and device.type != "cuda":
        raise ValueError("capture='cuda_graph' needs a CUDA device")
    return name
