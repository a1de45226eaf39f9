"""What Load HeartMuLa Codes adds to queuing a prompt: building its schema, whose file list reads
the input and output folders, when output/ holds many files (ComfyUI 0.39 builds every node's schema
for each queued prompt; earlier versions for each /object_info).

    python -m benchmarks.bench_codes_listing [--files 10000] [--folders 1] [--repeat 30]
                                             [--comfyui DIR]

A temporary ComfyUI base holds ``--files`` images in output/ (spread over ``--folders`` folders,
dated well before the run, as a folder that filled up over time is), 5 codes files in
output/heartmula/ and 1 in input/. The host is the stand-in of tests/host, or with ``--comfyui`` a
real ComfyUI's modules. Rows: "before" is the node as it was until issue 23 (``os.walk`` of both
folders on every build, sorted; kept below verbatim), "now" the node as it is (nodes/file_listing.py:
kept while no folder's time stamp changed). Cases: the first build, a build with nothing changed
(what each queued prompt pays), a build after an image landed in output/ (one walk, then kept
again), and a build while output/ changed in the last 2 s (read on every build, file_listing.RACY_NS).
Times are the median of ``--repeat`` builds, in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from .table import print_table

ROOT = Path(__file__).resolve().parents[1]
EXTENSION, OUTPUT_SUFFIX = ".safetensors", " [output]"


def listing_before(input_dir: str, output_dir: str) -> list[str]:
    """Load HeartMuLa Codes' file list before issue 23, verbatim (nodes/codes_io._list_codes_files)."""
    names = []
    for base, suffix in ((input_dir, ""), (output_dir, OUTPUT_SUFFIX)):
        if not os.path.isdir(base):
            continue
        for dirpath, _, files in sorted(os.walk(base)):
            for file in sorted(files):
                if file.endswith(EXTENSION):
                    rel = os.path.relpath(os.path.join(dirpath, file), base).replace(os.sep, "/")
                    names.append(rel + suffix)
    return names


def import_pack(comfyui: str | None):
    """The pack's codes_io module, imported as ComfyUI imports the pack, on the chosen host."""
    if comfyui:
        sys.path.insert(0, os.path.abspath(comfyui))
        import comfy.options

        comfy.options.enable_args_parsing(False)
        import comfy.cli_args

        comfy.cli_args.args.cpu = True
    else:
        sys.path.insert(0, str(ROOT / "tests" / "host"))
    sys.path.append(str(ROOT / "tests"))
    from pack_import import import_pack

    import_pack()
    from heartmula_pack.nodes import codes_io, file_listing

    return codes_io, file_listing


def fill(base: Path, files: int, folders: int) -> tuple[str, str]:
    """input/ and output/ of a ComfyUI base, as described above; every folder dated an hour back."""
    inp, out = base / "input", base / "output"
    for i in range(files):
        folder = out / (f"2026-11-{i % folders:02}" if folders > 1 else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"ComfyUI_{i:05}_.png").touch()
    (out / "heartmula").mkdir(parents=True)
    for i in range(5):
        (out / "heartmula" / f"take_{i + 1:05}_{EXTENSION}").touch()
    inp.mkdir()
    (inp / f"mine{EXTENSION}").touch()
    backdate(base)
    return str(inp), str(out)


def backdate(base: Path, seconds: float = 3600) -> None:
    past = time.time_ns() - int(seconds * 1e9)
    for folder, _, _ in os.walk(base):
        os.utime(folder, ns=(past, past))


def median_ms(build, repeat: int, before_each=None) -> float:
    times = []
    for _ in range(repeat):
        if before_each is not None:
            before_each()
        start = time.perf_counter()
        build()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def measure(codes_io, file_listing, inp: str, out: str, repeat: int) -> list[dict]:
    node, now_list = codes_io.LoadHeartMuLaCodes, codes_io._list_codes_files
    counter = iter(range(10**9))

    def new_image(recent: bool) -> None:
        Path(out, f"new_{next(counter)}.png").touch()
        if not recent:
            backdate(Path(out))

    def variant(listing, name: str) -> dict:
        codes_io._list_codes_files = listing
        file_listing._cache.clear()
        backdate(Path(out))  # the previous variant's last image is not "just now" any more
        start = time.perf_counter()
        node.GET_SCHEMA()
        first = (time.perf_counter() - start) * 1e3
        return {"node": name, "first build ms": f"{first:.2f}",
                "nothing changed ms": f"{median_ms(node.GET_SCHEMA, repeat):.3f}",
                "after a new image ms": f"{median_ms(node.GET_SCHEMA, repeat, lambda: new_image(False)):.3f}",
                "output/ changed < 2 s ago ms": f"{median_ms(node.GET_SCHEMA, repeat, lambda: new_image(True)):.2f}"}

    try:
        rows = [variant(lambda: listing_before(inp, out), "before (os.walk each build)"),
                variant(now_list, "now (kept while unchanged)")]
    finally:
        codes_io._list_codes_files = now_list
    assert listing_before(inp, out) == now_list(), "the two listings differ"
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000, help="images in output/ (default 10000)")
    parser.add_argument("--folders", type=int, default=1, help="output/ folders they are spread over")
    parser.add_argument("--repeat", type=int, default=30, help="builds per case (the median is shown)")
    parser.add_argument("--comfyui", help="a ComfyUI checkout to use instead of the stand-in (tests/host)")
    args = parser.parse_args(argv)
    codes_io, file_listing = import_pack(args.comfyui)
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = fill(Path(tmp), args.files, max(1, args.folders))
        folder_paths = sys.modules["folder_paths"]
        folder_paths.set_input_directory(inp)
        folder_paths.set_output_directory(out)
        options = codes_io.LoadHeartMuLaCodes.INPUT_TYPES()["required"]["file"][1]["options"]
        rows = measure(codes_io, file_listing, inp, out, args.repeat)
    host = f"ComfyUI at {args.comfyui}" if args.comfyui else "stand-in host"
    print_table(rows, f"Load HeartMuLa Codes schema build, {args.files} files in output/ ({args.folders} "
                      f"folder(s)), {len(options)} codes files listed, {host}")


if __name__ == "__main__":
    main()
