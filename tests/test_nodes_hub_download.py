"""A loader node's 'download if missing' through the real huggingface_hub, against the stand-in of
the Hub (hub_standin.py) that the command line's first-run tests use: one code path for both."""

from __future__ import annotations

import pytest

from hub_standin import CKPT, StandInHub, point_hub_at
from heartmula_node_env import CODEC_NAME, LM_NAME, comfy_home  # noqa: F401  (fixture)


def test_loader_node_downloads_an_official_lm_and_its_shared_files_from_the_hub(pack, comfy_home, tmp_path,
                                                                                monkeypatch):
    from heartmula_pack.nodes import loaders

    for name in ("tokenizer.json", "gen_config.json"):
        (comfy_home.models / name).unlink()
    name = "HeartMuLa-oss-3B-happy-new-year"
    with StandInHub() as hub:
        point_hub_at(monkeypatch, hub.url, tmp_path / "hf")
        lm, = comfy_home.run(loaders.LoadHeartMuLaLM, model=name, dtype="fp32", download_if_missing=True)
        fetched = hub.file_downloads()
        hub.requests.clear()
        again, = comfy_home.run(loaders.LoadHeartMuLaLM, model=name, dtype="fp32", download_if_missing=True)
        assert hub.requests == []  # there now: the Hub is not asked again
    assert lm.folder == again.folder == comfy_home.models / name
    assert "/HeartMuLa/HeartMuLaGen/resolve/main/tokenizer.json" in fetched
    assert "/HeartMuLa/HeartMuLaGen/resolve/main/gen_config.json" in fetched
    assert sorted(p.rsplit("/", 1)[-1] for p in fetched if f"/{name}/" in p) == ["config.json", "model.safetensors"]
    for file in ("config.json", "model.safetensors"):
        assert (lm.folder / file).read_bytes() == (CKPT / LM_NAME / file).read_bytes()
    assert (comfy_home.models / "tokenizer.json").read_bytes() == (CKPT / "tokenizer.json").read_bytes()
    assert sum(p.numel() for p in lm.model.parameters()) > 0


def test_loader_node_completes_an_official_folder_a_stopped_download_left_without_weights(pack, comfy_home,
                                                                                         tmp_path, monkeypatch):
    from heartmula_pack.heartmula_core.errors import CheckpointError
    from heartmula_pack.nodes import loaders

    codec = comfy_home.models / CODEC_NAME
    (codec / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="No weights in"):
        comfy_home.run(loaders.LoadHeartCodec, codec=CODEC_NAME, dtype="fp32", download_if_missing=False)
    with StandInHub() as hub:
        point_hub_at(monkeypatch, hub.url, tmp_path / "hf")
        loaded, = comfy_home.run(loaders.LoadHeartCodec, codec=CODEC_NAME, dtype="fp32", download_if_missing=True)
        fetched = hub.file_downloads()
    assert loaded.folder == codec
    assert all(p.startswith(f"/HeartMuLa/{CODEC_NAME}/resolve/") for p in fetched), fetched
    assert "model.safetensors" in [p.rsplit("/", 1)[-1] for p in fetched]
    assert (codec / "model.safetensors").read_bytes() == (CKPT / CODEC_NAME / "model.safetensors").read_bytes()
