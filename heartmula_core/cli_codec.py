"""`python -m heartmula_core decode | generate`: codes -> audio file, and lyrics + tags -> audio file.

Audio files are written with soundfile as 16-bit PCM (WAV, FLAC) or MP3 where libsndfile supports
it, clipped to [-1, 1]; ``--waveform-out`` keeps the raw float waveform before that conversion.
Every file goes to a temporary name in the target folder first and is renamed when complete, so a
failure or Ctrl-C never leaves a partial file behind.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from .atomic import atomic_write
from .errors import HeartMuLaError
from .runtime import pick_device, pick_dtype

# extension -> (soundfile format, subtype)
AUDIO_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".mp3": ("MP3", "MPEG_LAYER_III")}


def _audio_format(path: Path) -> tuple[str, str]:
    import soundfile

    fmt = AUDIO_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise HeartMuLaError(f"--out {path}: unknown audio extension; use .wav, .flac or .mp3.")
    if fmt[0] not in soundfile.available_formats():
        raise HeartMuLaError(
            f"--out {path}: this soundfile/libsndfile ({soundfile.__libsndfile_version__}) cannot write {fmt[0]}; "
            "use .wav or .flac, or install libsndfile >= 1.1 for MP3."
        )
    return fmt


def audio_paths(out: str | Path, count: int) -> list[Path]:
    """One song: the path as given. Several: name_0.ext, name_1.ext, ..."""
    out = Path(out)
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(count)]


def write_audio(out: str | Path, waveform: torch.Tensor, lengths_samples: list[int], sample_rate: int) -> list[Path]:
    """waveform [B, 2, N] float32 -> one file per song, each cut to its own length."""
    import soundfile

    paths = audio_paths(out, waveform.shape[0])
    fmt, subtype = _audio_format(paths[0])
    for path, song, n in zip(paths, waveform, lengths_samples):
        data = song[:, :n].clamp(-1.0, 1.0).T.contiguous().numpy()
        atomic_write(path, path.suffix, lambda tmp: soundfile.write(tmp, data, sample_rate, format=fmt, subtype=subtype))
    return paths


def write_waveform(path: str | Path, waveform: torch.Tensor) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    atomic_write(path, ".safetensors", lambda tmp: save_file({"waveform": waveform.contiguous()}, tmp))
    return path


def add_decode_options(p: argparse.ArgumentParser) -> None:
    """Options `decode` and `generate` share (a public interface: keep names stable)."""
    p.add_argument("--steps", type=int, default=10, help="Euler steps of the flow-matching decoder")
    p.add_argument("--guidance", type=float, default=1.25, help="decoder guidance scale (1.0 = off)")
    p.add_argument("--out", required=True, help="audio file: .wav, .flac or .mp3 (name_N.ext per song for batches)")
    p.add_argument("--waveform-out", help="also save the raw float waveform [B, 2, N] as safetensors ('waveform')")


def _codec_folder_near(model_dir: str | Path) -> Path:
    """The HeartCodec folder in ``model_dir`` or, when that is the LM folder itself, beside it."""
    from .checkpoints import list_codec_folders
    from .codec.model import resolve_codec_folder

    root = Path(model_dir).expanduser()
    if not list_codec_folders(root) and (root / "config.json").is_file() and list_codec_folders(root.parent):
        root = root.parent
    return resolve_codec_folder(root)


def run_decoding(args, codec_dir, codes: torch.Tensor, lengths: torch.Tensor) -> str:
    """Load the codec, decode, write the outputs; returns a summary line."""
    from .codec import decode, load_codec
    from .cli_sample import TerminalProgress

    device = pick_device(args.device)
    dtype = pick_dtype(args.dtype, device, default_gpu=torch.float32)  # the codec stays fp32 unless asked
    _audio_format(Path(args.out))  # fail before the slow part
    codec = load_codec(codec_dir, device=device, dtype=dtype)
    progress = TerminalProgress("decoding")
    start = time.perf_counter()
    waveform = decode(codec, codes, lengths, steps=args.steps, guidance=args.guidance,
                      generator=torch.Generator().manual_seed(args.seed), on_step=progress)
    seconds = time.perf_counter() - start
    rate = codec.config.sample_rate
    samples = [int(n / 12.5 * rate) for n in lengths.tolist()]
    if args.waveform_out:
        write_waveform(args.waveform_out, waveform)
    paths = write_audio(args.out, waveform, samples, rate)
    audio_seconds = sum(samples) / rate
    return (f"decoded {audio_seconds:.2f} s of audio in {seconds:.2f} s "
            f"({seconds / max(audio_seconds, 1e-9):.3f} s per audio second) on {device} "
            f"{str(dtype).replace('torch.', '')}; wrote {', '.join(str(p) for p in paths)}")


def cmd_decode(args) -> int:
    from .codes_file import load_codes

    codes, lengths = load_codes(args.codes)
    print(run_decoding(args, args.model_dir, codes, lengths))
    return 0


def cmd_generate(args) -> int:
    from .cli_sample import run_sampling

    _audio_format(Path(args.out))
    codec_dir = _codec_folder_near(args.model_dir)  # fail before sampling if it is missing
    codes, lengths, summary = run_sampling(args)
    print(summary)
    if args.codes_out:
        from .codes_file import save_codes

        save_codes(args.codes_out, codes, lengths)
    print(run_decoding(args, codec_dir, codes, lengths))
    return 0


def register(subparsers) -> None:
    from .cli_sample import add_sample_options

    d = subparsers.add_parser("decode", help="codes.safetensors -> audio file")
    d.add_argument("--model-dir", required=True, help="HeartCodec folder (or the root that holds it)")
    d.add_argument("--codes", required=True, help="codes file written by 'sample' (codes [B,8,T], lengths [B])")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    d.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="flow-matching transformer dtype (auto = fp32); the conv decoder is always fp32")
    add_decode_options(d)
    d.set_defaults(func=cmd_decode)

    g = subparsers.add_parser("generate", help="lyrics + tags -> audio file (sample, then decode)")
    add_sample_options(g)
    add_decode_options(g)
    g.add_argument("--codes-out", help="also save the sampled codes")
    g.set_defaults(func=cmd_generate)


__all__ = ["register", "write_audio", "audio_paths", "add_decode_options"]
