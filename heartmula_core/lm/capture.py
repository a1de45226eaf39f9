"""Ways to run the frame step: eager, torch.compile, or a CUDA graph replayed every frame.

Each runner is built on a ``FrameSampler`` and called as ``runner(previous, position) -> frame``;
it draws the frame's noise from the sampler's generator itself, so the three give the same tokens
for the same seed on the same device. The CUDA graph is captured on the first frame step of a
generation (it depends on that generation's caches) with static input buffers that later frames
overwrite in place.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger("heartmula")


def _fall_back(runner, exc: Exception) -> None:
    """One warning per generation: the captured path failed, the song goes on eagerly."""
    log.warning("HeartMuLa: %s failed (%s: %s); continuing with the eager frame step (same tokens, slower).",
                runner.what, type(exc).__name__, exc)


class EagerStep:
    def __init__(self, sampler):
        self.sampler = sampler
        self.eager = False  # set when a captured runner gave up and runs eagerly

    def __call__(self, previous: torch.Tensor, position: int) -> torch.Tensor:
        pos = torch.tensor([position], device=self.sampler.device)
        return self.sampler.step(previous, pos, self.sampler.draw_noise())


class CompiledStep(EagerStep):
    """torch.compile of the whole frame step (Inductor); shapes are static within a generation."""

    what = "torch.compile of the frame step"

    def __init__(self, sampler, mode: str | None = None):
        super().__init__(sampler)
        # freezing: weights become constants, which lets Inductor prepack them for the CPU GEMM
        self.compiled = torch.compile(sampler.step, dynamic=False, mode=mode, options={"freezing": True})
        self.first = True

    def __call__(self, previous, position):
        if self.eager:
            return super().__call__(previous, position)
        pos = torch.tensor([position], device=self.sampler.device)
        race = self.sampler.draw_noise()
        if not self.first:
            return self.compiled(previous, pos, race)
        self.first = False
        try:  # compiling happens on the first call; a failure there must not cost the song
            return self.compiled(previous, pos, race)
        except Exception as exc:
            _fall_back(self, exc)
            self.eager = True
            return self.sampler.step(previous, pos, race)  # the same noise: the same tokens as eager


class StaticStep:
    """The frame step on static buffers: the first call fills them and records the step, each later
    call overwrites them in place (previous frame, position, fresh noise) and replays it. How a step
    is recorded and replayed is left to subclasses."""

    what = "capturing the frame step"

    def __init__(self, sampler):
        self.sampler = sampler
        self.replay = None
        self.eager = False

    def _step(self):
        return self.sampler.step(self.previous, self.position, self.race)

    def _record(self):
        """Run the step once for real and return (replay callable, output buffer)."""
        raise NotImplementedError

    def __call__(self, previous, position):
        if self.eager:
            pos = torch.tensor([position], device=self.sampler.device)
            return self.sampler.step(previous, pos, self.sampler.draw_noise())
        if self.replay is None:
            self.previous = previous.clone()
            self.position = torch.tensor([position], device=self.sampler.device)
            self.race = self.sampler.draw_noise()
            try:
                self.replay, self.output = self._record()
            except Exception as exc:
                # An unseen GPU or driver may refuse the capture. The step only rewrites this
                # position's cache entries, so running it eagerly on the same inputs and noise
                # gives exactly the tokens the eager runner would have.
                _fall_back(self, exc)
                self.eager = True
                return self.sampler.step(self.previous, self.position, self.race)
        else:
            self.previous.copy_(previous)
            self.position.fill_(position)
            self.race.exponential_(1.0, generator=self.sampler.generator)
        self.replay()
        return self.output


class CudaGraphStep(StaticStep):
    """Capture the frame step once, then replay it: one launch per frame instead of ~1000."""

    def _record(self):
        # Warm-up on a side stream (lazy cuBLAS/attention init must not happen during capture). It
        # computes the very step the first replay repeats, so its cache writes are rewritten identically.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self._step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            output = self._step()
        return graph.replay, output


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
