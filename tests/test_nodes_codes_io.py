"""Save / Load HeartMuLa Codes: files in ComfyUI's output / input folders, never outside them, and a
clear error for anything that is not a codes file."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from heartmula_node_env import comfy_home  # noqa: F401  (fixture)


@pytest.fixture
def io_nodes(pack):
    from heartmula_pack.nodes import codes_io
    from heartmula_pack.nodes.types import HeartMuLaCodes

    return codes_io, HeartMuLaCodes


def sample_codes(HeartMuLaCodes):
    codes = torch.randint(0, 64, (2, 8, 9), generator=torch.Generator().manual_seed(0))
    return HeartMuLaCodes(codes, torch.tensor([9, 6]))


def file_options(codes_io):
    return codes_io.LoadHeartMuLaCodes.INPUT_TYPES()["required"]["file"][1]["options"]


def test_saved_codes_come_back_identical_from_the_output_folder(io_nodes, comfy_home):
    codes_io, HeartMuLaCodes = io_nodes
    codes = sample_codes(HeartMuLaCodes)
    out = codes_io.SaveHeartMuLaCodes.execute(codes=codes, filename_prefix="songs/take")
    assert out.ui == {"heartmula_codes": [{"filename": "take_00001_.safetensors", "subfolder": "songs",
                                           "type": "output"}]}
    codes_io.SaveHeartMuLaCodes.execute(codes=codes, filename_prefix="songs/take")
    assert sorted(p.name for p in (comfy_home.output / "songs").iterdir()) == [
        "take_00001_.safetensors", "take_00002_.safetensors"]
    assert file_options(codes_io) == ["songs/take_00001_.safetensors [output]",
                                      "songs/take_00002_.safetensors [output]"]
    loaded, = comfy_home.run(codes_io.LoadHeartMuLaCodes, file="songs/take_00001_.safetensors [output]")
    assert torch.equal(loaded.codes, codes.codes) and torch.equal(loaded.lengths, codes.lengths)


def test_input_folder_files_are_listed_plain_and_change_their_fingerprint(io_nodes, comfy_home):
    codes_io, HeartMuLaCodes = io_nodes
    from heartmula_pack.heartmula_core.codes import save_codes

    codes = sample_codes(HeartMuLaCodes)
    save_codes(comfy_home.input / "mine.safetensors", codes.codes, codes.lengths)
    (comfy_home.input / "notes.txt").write_text("not listed")
    assert file_options(codes_io) == ["mine.safetensors"]
    before = codes_io.LoadHeartMuLaCodes.fingerprint_inputs(file="mine.safetensors")
    save_codes(comfy_home.input / "mine.safetensors", codes.codes[:1], codes.lengths[:1])
    assert codes_io.LoadHeartMuLaCodes.fingerprint_inputs(file="mine.safetensors") != before
    loaded, = comfy_home.run(codes_io.LoadHeartMuLaCodes, file="mine.safetensors")
    assert loaded.codes.shape == (1, 8, 9)


@pytest.mark.parametrize("prefix", ["../escape/take", "/tmp/absolute/take", "songs/../../take"])
def test_save_refuses_names_outside_the_output_folder(io_nodes, comfy_home, prefix):
    codes_io, HeartMuLaCodes = io_nodes
    from heartmula_pack.heartmula_core.errors import CodesError

    with pytest.raises(CodesError, match="outside"):
        codes_io.SaveHeartMuLaCodes.execute(codes=sample_codes(HeartMuLaCodes), filename_prefix=prefix)
    assert not list(comfy_home.base.parent.rglob("take_*"))


@pytest.mark.parametrize("name", ["../outside.safetensors", "../output/x.safetensors [output]/../../y"])
def test_load_refuses_names_outside_the_input_folder(io_nodes, comfy_home, name):
    codes_io, _ = io_nodes
    from heartmula_pack.heartmula_core.errors import CodesError

    (comfy_home.base / "outside.safetensors").write_bytes(b"x")
    with pytest.raises(CodesError, match="outside|not found"):
        comfy_home.run(codes_io.LoadHeartMuLaCodes, file=name)


def test_symlink_out_of_the_input_folder_is_refused(io_nodes, comfy_home):
    codes_io, _ = io_nodes
    from heartmula_pack.heartmula_core.errors import CodesError

    secret = comfy_home.base / "secret.safetensors"
    secret.write_bytes(b"x")
    (comfy_home.input / "link.safetensors").symlink_to(secret)
    with pytest.raises(CodesError, match="outside"):
        comfy_home.run(codes_io.LoadHeartMuLaCodes, file="link.safetensors")


def test_files_that_are_not_codes_get_a_clear_error(io_nodes, comfy_home):
    codes_io, _ = io_nodes
    from heartmula_pack.heartmula_core.errors import CodesError

    save_file({"weight": torch.zeros(3)}, str(comfy_home.input / "model.safetensors"))
    (comfy_home.input / "junk.safetensors").write_bytes(b"definitely not safetensors")
    with pytest.raises(CodesError, match="not a HeartMuLa codes file"):
        comfy_home.run(codes_io.LoadHeartMuLaCodes, file="model.safetensors")
    with pytest.raises(CodesError, match="not a safetensors file"):
        comfy_home.run(codes_io.LoadHeartMuLaCodes, file="junk.safetensors")
    with pytest.raises(CodesError, match="not found in"):
        comfy_home.run(codes_io.LoadHeartMuLaCodes, file="gone.safetensors")
