"""Load HeartMuLa Codes' file list (nodes/file_listing.py): what it lists, and that it reads a folder
again only when something in it changed, so a full output/ costs little on every prompt."""

from __future__ import annotations

import os
import time

import pytest

from heartmula_node_env import comfy_home  # noqa: F401  (fixture)

HOUR_NS = 3600 * 10**9


@pytest.fixture
def listing(pack):
    from heartmula_pack.nodes import file_listing

    return file_listing


@pytest.fixture
def reads(monkeypatch, listing):
    """The folders read with os.scandir (by the listing, and by os.walk), cleared by the test as it goes."""
    seen = []
    real = os.scandir

    def scandir(path="."):
        seen.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(listing.os, "scandir", scandir)
    return seen


def age(root, seconds: float = 3600) -> None:
    """Date every folder under ``root`` back, as if written long before the listing."""
    past = time.time_ns() - int(seconds * 1e9)
    for folder, _, _ in os.walk(root):
        os.utime(folder, ns=(past, past))


def make(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_lists_only_files_with_the_extension_sorted_by_folder_then_name(listing, tmp_path):
    make(tmp_path, "b.safetensors", "a.safetensors", "img_00001_.png", "z/c.safetensors", "a-b/d.safetensors",
         "a/e.safetensors", "a/b/f.safetensors", ".git/g.safetensors", ".partial-x.safetensors", "z/h.flac")
    (tmp_path / "dir.safetensors").mkdir()
    (tmp_path / "dir.safetensors" / "i.safetensors").write_bytes(b"x")
    assert listing.files_with_extension(str(tmp_path), ".safetensors") == [
        "a.safetensors", "b.safetensors", "a/e.safetensors", "a-b/d.safetensors", "a/b/f.safetensors",
        "dir.safetensors/i.safetensors", "z/c.safetensors"]  # folder by folder ("a" < "a-b" < "a/b"), as os.walk sorted
    assert listing.files_with_extension(str(tmp_path / "missing"), ".safetensors") == []


def test_symlinked_folders_are_not_followed(listing, tmp_path):
    make(tmp_path / "elsewhere", "x.safetensors")
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert listing.files_with_extension(str(tmp_path / "base"), ".safetensors") == []


def test_an_unchanged_tree_is_not_read_again(listing, reads, tmp_path):
    make(tmp_path, *(f"ComfyUI_{i:05}_.png" for i in range(200)), "heartmula/take_00001_.safetensors")
    age(tmp_path)
    reads.clear()
    first = listing.files_with_extension(str(tmp_path), ".safetensors")
    assert first == ["heartmula/take_00001_.safetensors"] and len(reads) == 2
    reads.clear()
    assert listing.files_with_extension(str(tmp_path), ".safetensors") == first
    assert reads == []


@pytest.mark.parametrize("change", ["add in a subfolder", "remove", "rename", "new folder", "folder removed"])
def test_any_change_in_the_tree_is_seen_by_the_next_listing(listing, reads, tmp_path, change):
    make(tmp_path, "top.safetensors", "songs/a.safetensors", "songs/deep/b.safetensors")
    age(tmp_path)
    listing.files_with_extension(str(tmp_path), ".safetensors")
    expected = {
        "add in a subfolder": lambda: make(tmp_path, "songs/deep/c.safetensors"),
        "remove": lambda: os.remove(tmp_path / "songs/a.safetensors"),
        "rename": lambda: os.rename(tmp_path / "songs/deep/b.safetensors", tmp_path / "songs/deep/b2.safetensors"),
        "new folder": lambda: make(tmp_path, "new/d.safetensors"),
        "folder removed": lambda: (os.remove(tmp_path / "songs/deep/b.safetensors"), os.rmdir(tmp_path / "songs/deep")),
    }[change]
    expected()
    walked = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.safetensors"))
    got = listing.files_with_extension(str(tmp_path), ".safetensors")
    assert sorted(got) == walked


def test_a_folder_changed_in_the_last_seconds_is_read_again(listing, reads, tmp_path):
    """Its time stamp may not move for a file added in the same clock tick: it is not trusted yet."""
    make(tmp_path, "a.safetensors")
    for _ in range(2):
        reads.clear()
        assert listing.files_with_extension(str(tmp_path), ".safetensors") == ["a.safetensors"]
        assert reads == [str(tmp_path)]
    age(tmp_path, seconds=listing.RACY_NS / 1e9 + 1)
    listing.files_with_extension(str(tmp_path), ".safetensors")
    reads.clear()
    listing.files_with_extension(str(tmp_path), ".safetensors")
    assert reads == []


def test_an_unreadable_folder_is_left_out_and_the_listing_is_not_kept(listing, monkeypatch, tmp_path):
    """A folder scandir may not read (permissions; faked here, as root reads everything) is skipped,
    and the listing is read again next time: making it readable moves no time stamp."""
    make(tmp_path, "a.safetensors", "locked/b.safetensors")
    age(tmp_path)
    real, locked, reads = os.scandir, {str(tmp_path / "locked")}, []

    def scandir(path="."):
        reads.append(os.fspath(path))
        if os.fspath(path) in locked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(listing.os, "scandir", scandir)
    for _ in range(2):
        reads.clear()
        assert listing.files_with_extension(str(tmp_path), ".safetensors") == ["a.safetensors"]
        assert str(tmp_path) in reads
    locked.clear()
    assert listing.files_with_extension(str(tmp_path), ".safetensors") == ["a.safetensors", "locked/b.safetensors"]


def test_the_node_lists_input_then_output_files_without_reading_unchanged_folders(pack, reads, comfy_home):
    from heartmula_pack.nodes.codes_io import LoadHeartMuLaCodes

    make(comfy_home.input, "mine.safetensors", "photo.png")
    make(comfy_home.output, *(f"ComfyUI_{i:05}_.png" for i in range(300)), "heartmula/take_00001_.safetensors")
    age(comfy_home.input)
    age(comfy_home.output)

    def options():
        return LoadHeartMuLaCodes.INPUT_TYPES()["required"]["file"][1]["options"]

    assert options() == ["mine.safetensors", "heartmula/take_00001_.safetensors [output]"]
    reads.clear()
    assert options() == ["mine.safetensors", "heartmula/take_00001_.safetensors [output]"]
    assert reads == []
    make(comfy_home.output, "heartmula/take_00002_.safetensors")
    assert options()[-1] == "heartmula/take_00002_.safetensors [output]"
    output = os.path.abspath(comfy_home.output)
    assert sorted(reads) == [output, os.path.join(output, "heartmula")]  # the input folder was not read
