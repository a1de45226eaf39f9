"""Which patcher each loader hands its model to (docs/ARCHITECTURE.md, "Model management").

The LM always gets a plain ModelPatcher: a full load leaves its weights resident on the GPU, which
the CUDA graph of the frame step needs. The codec gets ComfyUI's CoreModelPatcher (0.28+; a
ModelPatcherDynamic when DynamicVRAM is on), after ``archive_model_dtypes`` as ComfyUI's own models
do, and a plain ModelPatcher on hosts that have no CoreModelPatcher (0.3.64). Runs on the stand-in
and on a real ComfyUI; the host's classes are replaced by recording ones, so no GPU is needed.
"""

from __future__ import annotations

import pytest
import torch

from heartmula_node_env import CODEC_NAME, LM_NAME, comfy_home  # noqa: F401  (fixture)


@pytest.fixture
def core_patcher(monkeypatch):
    """A recording CoreModelPatcher, and the models whose dtypes were archived (with their meta count)."""
    import comfy.model_management as mm
    import comfy.model_patcher

    class RecordingCorePatcher(comfy.model_patcher.ModelPatcher):
        pass

    archived = []

    def archive(model):
        archived.append((model, sum(p.is_meta for p in model.parameters())))

    monkeypatch.setattr(comfy.model_patcher, "CoreModelPatcher", RecordingCorePatcher, raising=False)
    monkeypatch.setattr(mm, "archive_model_dtypes", archive, raising=False)
    return RecordingCorePatcher, archived


def load_both(pack, home):
    from heartmula_pack.nodes import loaders

    lm, = home.run(loaders.LoadHeartMuLaLM, model=LM_NAME, dtype="auto", download_if_missing=False)
    codec, = home.run(loaders.LoadHeartCodec, codec=CODEC_NAME, dtype="fp32", download_if_missing=False)
    return lm, codec


def test_codec_goes_to_core_model_patcher_and_lm_to_a_plain_model_patcher(pack, comfy_home, core_patcher):
    import comfy.model_patcher

    recording, archived = core_patcher
    lm, codec = load_both(pack, comfy_home)
    assert type(lm.patcher) is comfy.model_patcher.ModelPatcher
    assert isinstance(codec.patcher, recording)
    assert archived == [(codec.patcher.model, 0)]  # the codec's dtypes, read once its weights are in
    size = sum(t.nelement() * t.element_size() for t in codec.patcher.model.state_dict().values())
    assert codec.patcher.model_size() == size
    assert codec.patcher.offload_device == torch.device("cpu")


def test_the_codec_in_core_model_patcher_decodes_like_in_a_model_patcher(pack, comfy_home, core_patcher, monkeypatch):
    import comfy.model_patcher
    from heartmula_pack.nodes import decoding
    from heartmula_pack.nodes import sampler as sampling
    from lm_fixtures import expected_inputs
    from heartmula_pack.nodes import conditioning

    lm, codec = load_both(pack, comfy_home)
    inputs = expected_inputs()
    prompt, = comfy_home.run(conditioning.HeartMuLaLyricsTags, lm=lm, tags=inputs["tags"], lyrics=inputs["lyrics"])
    codes, = comfy_home.run(sampling.HeartMuLaSampler, lm=lm, prompt=prompt, seed=2, seconds=0.8, temperature=1.0,
                            top_k=8, cfg_scale=1.5, batch_size=1)
    audio, = comfy_home.run(decoding.HeartCodecDecode, codec=codec, codes=codes, seed=0, steps=2, guidance=1.25)
    assert [p for p, _ in comfy_home.loads][-1] == [codec.patcher]
    monkeypatch.delattr(comfy.model_patcher, "CoreModelPatcher")
    _, plain = load_both(pack, comfy_home)
    assert type(plain.patcher) is comfy.model_patcher.ModelPatcher  # a host without CoreModelPatcher
    again, = comfy_home.run(decoding.HeartCodecDecode, codec=plain, codes=codes, seed=0, steps=2, guidance=1.25)
    assert torch.equal(again["waveform"], audio["waveform"]) and audio["waveform"].abs().max() > 0
