"""The frame step is capture-ready: tensors in and out, no host reads; captured paths match eager."""

import pytest
import torch

from heartmula_core.lm.load import load_lm
from heartmula_core.lm.frame_sampler import FrameSampler
from heartmula_core.lm.generation import generate
from lm_fixtures import TINY_LM, no_host_reads, tiny_lm_fixtures


lm, prompt = tiny_lm_fixtures("rock,guitar", "[chorus]\nhey hey\n")


def test_frame_step_takes_and_returns_tensors_without_host_reads(lm, prompt, monkeypatch):
    with torch.inference_mode():
        sampler = FrameSampler(lm.model, songs=2, cfg_scale=1.5, top_k=5, temperature=1.0,
                               max_len=prompt.length + 4, generator=torch.Generator().manual_seed(0),
                               device=torch.device("cpu"), dtype=torch.float32)
        frame = sampler.prompt_pass(prompt, sampler.draw_noise())
        position = torch.tensor([prompt.length])
        noise = sampler.draw_noise()
        with no_host_reads(monkeypatch):
            out = sampler.step(frame, position, noise)
    assert isinstance(out, torch.Tensor) and out.shape == (4, 8)
    assert torch.equal(out[:2], out[2:]), "a CFG pair shares its tokens"


def test_compiled_and_eager_give_identical_greedy_codes(lm, prompt):
    kw = dict(max_frames=6, eos_id=lm.gen_config.audio_eos_id, top_k=1, cfg_scale=1.5, batch_size=2)
    eager = generate(lm.model, prompt, capture="eager", **kw)
    compiled = generate(lm.model, prompt, capture="compile", **kw)
    assert torch.equal(eager.codes, compiled.codes)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_matches_eager_and_never_syncs(prompt):
    from heartmula_core.lm.capture import CudaGraphStep

    gpu = load_lm(TINY_LM, device="cuda")
    for top_k in (1, 8):
        kw = dict(max_frames=20, eos_id=gpu.gen_config.audio_eos_id, top_k=top_k, cfg_scale=1.5, batch_size=2, seed=3)
        eager = generate(gpu.model, prompt, capture="eager", **kw)
        graph = generate(gpu.model, prompt, capture="cuda_graph", **kw)
        assert torch.equal(eager.codes, graph.codes)
    with torch.inference_mode():
        sampler = FrameSampler(gpu.model, songs=1, cfg_scale=1.5, top_k=8, temperature=1.0,
                               max_len=prompt.length + 8, generator=torch.Generator("cuda").manual_seed(0),
                               device=torch.device("cuda"), dtype=torch.float32)
        runner = CudaGraphStep(sampler)
        frame = runner(sampler.prompt_pass(prompt, sampler.draw_noise()), prompt.length)
        torch.cuda.set_sync_debug_mode("error")
        try:
            for t in range(1, 6):
                frame = runner(frame, prompt.length + t)
        finally:
            torch.cuda.set_sync_debug_mode("default")


def test_auto_capture_uses_a_cuda_graph_only_with_every_weight_on_the_gpu(lm):
    from heartmula_core.lm.capture import pick_runner

    assert pick_runner("auto", torch.device("cpu"), lm.model) == "eager"
    # the tiny model's weights are on the CPU: as after a partial load, a CUDA run must not capture
    assert pick_runner("auto", torch.device("cuda"), lm.model) == "eager"
    assert pick_runner("auto", torch.device("cuda")) == "cuda_graph"
    with pytest.raises(ValueError, match="needs a CUDA device"):
        pick_runner("cuda_graph", torch.device("cpu"))


def test_static_buffer_replay_matches_eager(lm, prompt):
    """The CUDA graph runner's buffer handling (previous frame, position and noise rewritten in place
    each frame, one output buffer) checked on the CPU with a recorder that recomputes the step."""
    from heartmula_core.lm.capture import EagerStep, StaticStep

    class RecomputeStep(StaticStep):
        def _record(self):
            output = self._step()
            return (lambda: output.copy_(self._step())), output

    def frames(runner_class):
        with torch.inference_mode():
            sampler = FrameSampler(lm.model, songs=2, cfg_scale=1.5, top_k=8, temperature=1.0,
                                   max_len=prompt.length + 12, generator=torch.Generator().manual_seed(4),
                                   device=torch.device("cpu"), dtype=torch.float32)
            runner = runner_class(sampler)
            frame = sampler.prompt_pass(prompt, sampler.draw_noise())
            out = [frame.clone()]
            for t in range(1, 10):
                frame = runner(frame, prompt.length + t - 1)
                out.append(frame.clone())
            return torch.stack(out)

    assert torch.equal(frames(RecomputeStep), frames(EagerStep))
