"""The loader nodes' download_source: 'download if missing' from ModelScope through the real
`modelscope` client, against the stand-in of ModelScope (modelscope_standin.py) that the command
line's tests use, in process (point_modelscope_at), on the stand-in host and on a real ComfyUI
(COMFYUI_DIR). Without the modelscope package, choosing it is one error and the Hub path is as before."""

from __future__ import annotations

import pytest

from heartmula_node_env import CODEC_NAME, LM_NAME, comfy_home  # noqa: F401  (fixture)
from hub_standin import CKPT, StandInHub, point_hub_at
from modelscope_standin import StandInModelScope, hide_modelscope, needs_modelscope, point_modelscope_at

NO_PACKAGE = ("Downloading from ModelScope needs the modelscope package, which is not installed: pip install "
              "modelscope (in the Python that runs the pack), or download from the Hugging Face Hub (hf).")


def loader_classes(pack):
    from heartmula_pack.nodes import loaders, scoring, transcription

    return (loaders.LoadHeartMuLaLM, loaders.LoadHeartCodec, transcription.LoadHeartTranscriptor,
            scoring.LoadCLAP)


def test_download_source_is_the_last_input_of_every_loader_and_optional(pack):
    for node in loader_classes(pack):
        types = node.INPUT_TYPES()
        order = list(types["required"]) + list(types.get("optional", {}))
        # after every input a saved workflow or an API prompt already holds, so both keep working
        assert order[-1] == "download_source" and list(types["required"])[-1] == "download_if_missing", node
        spec = types["optional"]["download_source"][1]
        assert spec["options"] == ["default", "hf", "modelscope"] and spec["default"] == "default"
        assert "HEARTMULA_DOWNLOAD_SOURCE" in spec["tooltip"] and "pip install modelscope" in spec["tooltip"]


@needs_modelscope
def test_lm_loader_downloads_an_official_lm_and_its_shared_files_from_modelscope(pack, comfy_home, tmp_path,
                                                                               monkeypatch):
    from heartmula_pack.nodes import loaders

    for name in ("tokenizer.json", "gen_config.json"):
        (comfy_home.models / name).unlink()
    name = "HeartMuLa-oss-3B-happy-new-year"
    with StandInModelScope() as ms, StandInHub() as hub:
        point_hub_at(monkeypatch, hub.url, tmp_path / "hf")
        point_modelscope_at(monkeypatch, ms.url, tmp_path / "ms")
        lm, = comfy_home.run(loaders.LoadHeartMuLaLM, model=name, dtype="fp32", download_if_missing=True,
                             download_source="modelscope")
        fetched = ms.file_downloads()
        ms.requests.clear()
        again, = comfy_home.run(loaders.LoadHeartMuLaLM, model=name, dtype="fp32", download_if_missing=True,
                                download_source="modelscope")
        assert ms.requests == [] and hub.requests == []  # there now: ModelScope is not asked again
    assert lm.folder == again.folder == comfy_home.models / name
    assert sorted(fetched) == ["HeartMuLa/HeartMuLa-oss-3B-happy-new-year/config.json",
                               "HeartMuLa/HeartMuLa-oss-3B-happy-new-year/model.safetensors",
                               "HeartMuLa/HeartMuLaGen/gen_config.json", "HeartMuLa/HeartMuLaGen/tokenizer.json"]
    for file in ("config.json", "model.safetensors"):
        assert (lm.folder / file).read_bytes() == (CKPT / LM_NAME / file).read_bytes()
    assert (comfy_home.models / "tokenizer.json").read_bytes() == (CKPT / "tokenizer.json").read_bytes()
    assert sum(p.numel() for p in lm.model.parameters()) > 0


@needs_modelscope
def test_codec_loader_completes_a_stopped_download_from_where_it_stopped(pack, comfy_home, tmp_path, monkeypatch):
    """The source comes from HEARTMULA_DOWNLOAD_SOURCE (the input left at default)."""
    from heartmula_pack.nodes import loaders

    weights = comfy_home.models / CODEC_NAME / "model.safetensors"
    partial = weights.with_name("model.safetensors.incomplete")
    partial.write_bytes(weights.read_bytes()[:4096])
    weights.unlink()
    monkeypatch.setenv("HEARTMULA_DOWNLOAD_SOURCE", "modelscope")
    with StandInModelScope() as ms:
        point_modelscope_at(monkeypatch, ms.url, tmp_path / "ms")
        loaded, = comfy_home.run(loaders.LoadHeartCodec, codec=CODEC_NAME, dtype="fp32", download_if_missing=True)
        fetched = [(path, byte_range) for _, path, byte_range in ms.requests if "FilePath=" in path]
    assert loaded.folder == weights.parent
    assert [r for p, r in fetched if "model.safetensors" in p] == ["bytes=4096-"] and len(fetched) == 1
    assert weights.read_bytes() == (CKPT / CODEC_NAME / "model.safetensors").read_bytes()
    assert not partial.exists()


def test_clap_is_not_on_modelscope_and_says_where_it_is(pack, comfy_home):
    from heartmula_pack.heartmula_core.errors import CheckpointError
    from heartmula_pack.nodes import scoring

    with pytest.raises(CheckpointError) as err:
        comfy_home.run(scoring.LoadCLAP, model="larger_clap_music", dtype="fp32", download_if_missing=True,
                       download_source="modelscope")
    message = str(err.value)
    assert message.startswith("CLAP larger_clap_music is not on ModelScope as far as this pack knows")
    assert 'hf download laion/larger_clap_music --local-dir "' in message and "modelscope download" not in message


def test_an_unknown_download_source_is_refused_with_the_choices(pack, comfy_home):
    from heartmula_pack.heartmula_core.errors import CheckpointError
    from heartmula_pack.nodes import loaders

    with pytest.raises(CheckpointError, match=r"Unknown download source 'modelscoep': use hf .* or modelscope"):
        comfy_home.run(loaders.LoadHeartCodec, codec="HeartCodec-oss-20260123", dtype="fp32",
                       download_if_missing=True, download_source="modelscoep")


def test_without_the_modelscope_package_choosing_it_is_one_error_and_the_hub_still_works(pack, comfy_home, tmp_path,
                                                                                       monkeypatch):
    from heartmula_pack.heartmula_core.errors import CheckpointError
    from heartmula_pack.nodes import loaders

    hide_modelscope(monkeypatch)
    name = "HeartCodec-oss-20260123"
    with StandInHub() as hub:
        point_hub_at(monkeypatch, hub.url, tmp_path / "hf")
        with pytest.raises(CheckpointError) as err:
            comfy_home.run(loaders.LoadHeartCodec, codec=name, dtype="fp32", download_if_missing=True,
                           download_source="modelscope")
        assert str(err.value) == NO_PACKAGE and hub.requests == []
        assert not (comfy_home.models / name).exists()
        loaded, = comfy_home.run(loaders.LoadHeartCodec, codec=name, dtype="fp32", download_if_missing=True,
                                 download_source="hf")
        assert hub.file_downloads()
    assert (loaded.folder / "model.safetensors").read_bytes() == (CKPT / CODEC_NAME / "model.safetensors").read_bytes()


def test_nothing_missing_needs_no_download_package(pack, comfy_home, monkeypatch):
    """A complete folder is used as it is: modelscope is neither imported nor asked for."""
    from heartmula_pack.nodes import loaders

    hide_modelscope(monkeypatch)
    loaded, = comfy_home.run(loaders.LoadHeartCodec, codec=CODEC_NAME, dtype="fp32", download_if_missing=True,
                             download_source="modelscope")
    assert loaded.folder == comfy_home.models / CODEC_NAME
