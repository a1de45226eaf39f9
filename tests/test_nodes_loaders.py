"""Loader nodes on the tiny checkpoints: dropdowns, folders in every registered location, models
handed to ComfyUI in ModelPatchers, downloads, and every error a user can meet."""

from __future__ import annotations

import shutil

import pytest
import torch

from heartmula_node_env import CODEC_NAME, LM_NAME, TINY_CKPT, comfy_home  # noqa: F401  (fixture)


@pytest.fixture
def nodes(pack):
    from heartmula_pack.heartmula_core.checkpoints import sources
    from heartmula_pack.nodes import loaders

    return loaders, sources  # sources._hub: where the Hugging Face Hub's client comes from


def options(node, name):
    return node.INPUT_TYPES()["required"][name][1]["options"]


def test_dropdowns_list_installed_folders_first_then_official_names(nodes, comfy_home):
    loaders, _ = nodes
    shutil.copytree(TINY_CKPT / LM_NAME, comfy_home.models / "My-Finetune")
    lm = options(loaders.LoadHeartMuLaLM, "model")
    assert lm == [LM_NAME, "My-Finetune", "HeartMuLa-RL-oss-3B-20260123", "HeartMuLa-oss-3B-happy-new-year"]
    assert options(loaders.LoadHeartCodec, "codec") == [CODEC_NAME, "HeartCodec-oss-20260123"]
    dtype = loaders.LoadHeartMuLaLM.INPUT_TYPES()["required"]["dtype"][1]
    assert dtype["options"] == ["auto", "bf16", "fp16", "fp32"] and dtype["default"] == "auto"
    assert loaders.LoadHeartCodec.INPUT_TYPES()["required"]["dtype"][1]["default"] == "fp32"


def test_folders_in_lowercase_heartmula_and_new_folders_after_refresh_are_listed(nodes, comfy_home):
    loaders, _ = nodes
    other_pack = comfy_home.base / "models" / "heartmula"
    shutil.copytree(TINY_CKPT / CODEC_NAME, other_pack / "HeartCodec-oss-20260123")
    before = options(loaders.LoadHeartMuLaLM, "model")
    shutil.copytree(TINY_CKPT / LM_NAME, comfy_home.models / "Added-Later")
    after = options(loaders.LoadHeartMuLaLM, "model")  # schemas are rebuilt on every /object_info
    assert "Added-Later" not in before and "Added-Later" in after
    codec, = comfy_home.run(loaders.LoadHeartCodec, codec="HeartCodec-oss-20260123", dtype="fp32",
                            download_if_missing=False)
    assert codec.folder == other_pack / "HeartCodec-oss-20260123"


def test_lm_loader_builds_on_the_offload_device_and_wraps_in_a_model_patcher(nodes, comfy_home):
    import comfy.model_management as mm
    import comfy.model_patcher

    loaders, _ = nodes
    lm, = comfy_home.run(loaders.LoadHeartMuLaLM, model=LM_NAME, dtype="auto", download_if_missing=False)
    assert isinstance(lm.patcher, comfy.model_patcher.ModelPatcher)
    assert lm.patcher.load_device == mm.get_torch_device()
    assert lm.patcher.offload_device == mm.unet_offload_device()
    params = list(lm.model.parameters())
    assert all(p.device == lm.patcher.offload_device for p in params)
    assert lm.dtype == torch.float32  # auto on a CPU
    assert lm.patcher.model_size() == sum(t.nelement() * t.element_size() for t in lm.model.state_dict().values())
    assert lm.folder == comfy_home.models / LM_NAME
    assert lm.gen_config.audio_eos_id == 65 and lm.tokenizer.encode("piano").ids
    assert comfy_home.loads == []  # loading a checkpoint never puts it on the GPU by itself


def test_dtype_choice_sets_weight_precision(nodes, comfy_home):
    loaders, _ = nodes
    lm, = comfy_home.run(loaders.LoadHeartMuLaLM, model=LM_NAME, dtype="bf16", download_if_missing=False)
    assert lm.dtype == torch.bfloat16 and lm.model.text_embeddings.weight.dtype == torch.bfloat16
    codec, = comfy_home.run(loaders.LoadHeartCodec, codec=CODEC_NAME, dtype="fp32", download_if_missing=False)
    assert codec.dtype == torch.float32
    assert codec.patcher.load_device is not None and codec.patcher.offload_device == torch.device("cpu")


def test_missing_official_lm_without_download_names_the_folder_and_the_commands(nodes, comfy_home):
    from heartmula_pack.heartmula_core.errors import CheckpointError

    loaders, _ = nodes
    with pytest.raises(CheckpointError) as err:
        comfy_home.run(loaders.LoadHeartMuLaLM, model="HeartMuLa-RL-oss-3B-20260123", dtype="auto",
                       download_if_missing=False)
    message = str(err.value)
    assert str(comfy_home.models / "HeartMuLa-RL-oss-3B-20260123") in message
    assert (f'hf download HeartMuLa/HeartMuLa-RL-oss-3B-20260123 --local-dir '
            f'"{comfy_home.models / "HeartMuLa-RL-oss-3B-20260123"}"') in message
    assert f'hf download HeartMuLa/HeartMuLaGen tokenizer.json gen_config.json --local-dir "{comfy_home.models}"' \
        in message
    assert "download if missing" in message


def test_missing_codec_without_download_names_the_command(nodes, comfy_home):
    from heartmula_pack.heartmula_core.errors import CheckpointError

    loaders, _ = nodes
    with pytest.raises(CheckpointError, match=r'hf download HeartMuLa/HeartCodec-oss-20260123 --local-dir ".*'
                                              r'HeartCodec-oss-20260123"'):
        comfy_home.run(loaders.LoadHeartCodec, codec="HeartCodec-oss-20260123", dtype="fp32",
                       download_if_missing=False)


def test_unknown_folder_name_lists_what_is_installed(nodes, comfy_home):
    from heartmula_pack.heartmula_core.errors import CheckpointError

    loaders, _ = nodes
    with pytest.raises(CheckpointError) as err:  # the server does not check combo values: any string arrives
        comfy_home.run(loaders.LoadHeartMuLaLM, model="no-such-model", dtype="auto", download_if_missing=True)
    message = str(err.value)
    assert "'no-such-model'" in message and f"Installed: {LM_NAME}" in message
    assert str(comfy_home.models) in message


def test_lm_without_shared_tokenizer_files_gets_their_download_command(nodes, comfy_home):
    from heartmula_pack.heartmula_core.errors import CheckpointError

    loaders, _ = nodes
    (comfy_home.models / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError) as err:
        comfy_home.run(loaders.LoadHeartMuLaLM, model=LM_NAME, dtype="auto", download_if_missing=False)
    assert f'hf download HeartMuLa/HeartMuLaGen tokenizer.json --local-dir "{comfy_home.models}"' in str(err.value)


class FakeHub:
    """Stands in for huggingface_hub: serves the tiny checkpoints under the official repo ids."""

    def __init__(self, fail=False):
        self.calls = []
        self.fail = fail

    def snapshot_download(self, repo_id, local_dir):
        self.calls.append(("snapshot", repo_id, local_dir))
        if self.fail:
            raise OSError("no network")
        source = CODEC_NAME if "Codec" in repo_id else LM_NAME
        shutil.copytree(TINY_CKPT / source, local_dir, dirs_exist_ok=True)
        return local_dir

    def hf_hub_download(self, repo_id, filename, local_dir):
        self.calls.append(("file", repo_id, filename))
        shutil.copy(TINY_CKPT / filename, local_dir)
        return f"{local_dir}/{filename}"


def test_download_if_missing_fetches_the_official_repos_into_the_model_folder(nodes, comfy_home, monkeypatch):
    loaders, sources = nodes
    for name in ("tokenizer.json", "gen_config.json"):
        (comfy_home.models / name).unlink()
    hub = FakeHub()
    monkeypatch.setattr(sources, "_hub", lambda: hub)
    name = "HeartMuLa-oss-3B-happy-new-year"
    lm, = comfy_home.run(loaders.LoadHeartMuLaLM, model=name, dtype="auto", download_if_missing=True)
    assert lm.folder == comfy_home.models / name
    assert hub.calls == [
        ("file", "HeartMuLa/HeartMuLaGen", "tokenizer.json"),
        ("file", "HeartMuLa/HeartMuLaGen", "gen_config.json"),
        ("snapshot", "HeartMuLa/HeartMuLa-oss-3B-happy-new-year", str(comfy_home.models / name)),
    ]
    codec, = comfy_home.run(loaders.LoadHeartCodec, codec="HeartCodec-oss-20260123", dtype="fp32",
                            download_if_missing=True)
    assert hub.calls[-1] == ("snapshot", "HeartMuLa/HeartCodec-oss-20260123",
                             str(comfy_home.models / "HeartCodec-oss-20260123"))
    hub.calls.clear()
    comfy_home.run(loaders.LoadHeartMuLaLM, model=name, dtype="auto", download_if_missing=True)
    assert hub.calls == []  # present now: nothing fetched twice


def test_failed_download_says_what_to_run_by_hand(nodes, comfy_home, monkeypatch):
    from heartmula_pack.heartmula_core.errors import CheckpointError

    loaders, sources = nodes
    monkeypatch.setattr(sources, "_hub", lambda: FakeHub(fail=True))
    with pytest.raises(CheckpointError) as err:
        comfy_home.run(loaders.LoadHeartCodec, codec="HeartCodec-oss-20260123", dtype="fp32",
                       download_if_missing=True)
    assert "no network" in str(err.value)
    assert "hf download HeartMuLa/HeartCodec-oss-20260123" in str(err.value)


def test_broken_checkpoint_error_comes_from_the_core_with_the_file_named(nodes, comfy_home):
    from heartmula_pack.heartmula_core.errors import CheckpointError

    loaders, _ = nodes
    (comfy_home.models / LM_NAME / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        comfy_home.run(loaders.LoadHeartMuLaLM, model=LM_NAME, dtype="auto", download_if_missing=False)


def test_dtype_outside_the_dropdown_is_refused_with_the_choices(nodes, comfy_home):
    loaders, _ = nodes
    with pytest.raises(ValueError, match="auto, bf16, fp16, fp32.*'fp8'"):
        comfy_home.run(loaders.LoadHeartMuLaLM, model=LM_NAME, dtype="fp8", download_if_missing=False)
    with pytest.raises(ValueError, match="fp32, bf16, fp16.*'auto'"):
        comfy_home.run(loaders.LoadHeartCodec, codec=CODEC_NAME, dtype="auto", download_if_missing=False)
