"""Output checks the command line runs before any model loads: every path it will write, that no
two outputs are one file (or an input), and free disk space. A mistake costs a second, not the
minutes of sampling before it. (Settings, prompts and memory are the song path's check, which comes
before any check that counts songs: a --batch too large for memory is told so, never sized on disk.)"""

from __future__ import annotations

import os
from pathlib import Path

from ..atomic import OutputTarget, check_free_space, output_target
from ..audio_files import audio_paths
from ..codes import CODEBOOKS, SAMPLES_PER_FRAME
from ..errors import OutputError

AUDIO_BYTES_PER_SAMPLE = {".wav": 4.0, ".flac": 4.0, ".mp3": 0.5}  # stereo 16-bit PCM; MP3 is far smaller


def codes_target(path, flag: str) -> OutputTarget:
    return output_target(path, flag, "codes.safetensors")


def check_codes_space(target: OutputTarget, songs: int, frames: int) -> None:
    check_free_space(target, songs * CODEBOOKS * frames * 8 + 4096)


def audio_targets(out, lengths: list[int], waveform_out=None) -> tuple[list[OutputTarget], OutputTarget | None]:
    """--out (name_0.ext, name_1.ext, ... for several songs) and --waveform-out, checked and sized."""
    paths = audio_paths(out, len(lengths))
    per_sample = AUDIO_BYTES_PER_SAMPLE.get(Path(out).suffix.lower(), 4.0)
    targets = [output_target(p, "--out", "song" + (Path(out).suffix or ".wav")) for p in paths]
    for target, frames in zip(targets, lengths):
        check_free_space(target, int(frames * SAMPLES_PER_FRAME * per_sample) + 4096)
    wave = None
    if waveform_out:
        wave = output_target(waveform_out, "--waveform-out", "waveform.safetensors")
        check_free_space(wave, len(lengths) * max(lengths) * SAMPLES_PER_FRAME * 2 * 4 + 4096)
    return targets, wave


def check_distinct(targets: list[OutputTarget | None], inputs: list[str | Path] = ()) -> None:
    """No two outputs may be the same file, and no output may be an input of the same run."""
    seen: dict[str, OutputTarget] = {}
    for target in (t for t in targets if t is not None and not t.discard):
        key = os.path.normcase(str(target.path))
        if key in seen:
            raise OutputError(f"{seen[key].what} {seen[key].given} and {target.what} {target.given} are the same "
                              "file; give each output its own name.")
        seen[key] = target
    for path in inputs:
        key = os.path.normcase(os.path.realpath(path))
        if key in seen:
            raise OutputError(f"{seen[key].what} {seen[key].given} is the input file {path}; write to another name.")
