"""`python -m heartmula_core decode | generate`: codes -> audio file, and lyrics + tags -> audio file.

Audio files are written with soundfile as 16-bit PCM (WAV, FLAC) or MP3 where libsndfile supports
it, clipped to [-1, 1]; ``--waveform-out`` keeps the raw float waveform before that conversion.
Every file goes to a temporary name in the target folder first and is renamed when complete, so a
failure or Ctrl-C never leaves a partial file behind.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import torch

from .atomic import atomic_write, atomic_write_all, is_null_device
from .errors import HeartMuLaError
from .runtime import memory_errors, pick_device, pick_dtype
from .settings import seeded_generator

# extension -> (soundfile format, subtype)
AUDIO_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".mp3": ("MP3", "MPEG_LAYER_III")}


def _audio_format(path: Path) -> tuple[str, str]:
    import soundfile

    if is_null_device(path):
        return AUDIO_FORMATS[".wav"]  # nothing is written: any format will do
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
    """One song: the path as given. Several: name_0.ext, name_1.ext, ... (the null device: itself)."""
    out = Path(out)
    if count == 1 or is_null_device(out):
        return [out] * count
    return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(count)]


def write_audio(out, waveform: torch.Tensor, lengths_samples: list[int], sample_rate: int,
                targets: list | None = None) -> list[Path]:
    """waveform [B, 2, N] float32 -> one file per song, each cut to its own length. All or nothing:
    every song goes to a temporary file first, and only when all are written are they renamed."""
    import soundfile

    paths = audio_paths(out, waveform.shape[0])
    fmt, subtype = _audio_format(paths[0])

    def writer(data):
        def write(tmp: str) -> None:
            # encode in memory, then write the bytes ourselves: libsndfile reports a full disk only
            # as "System error", Python's own write says which error it was
            buffer = io.BytesIO()
            soundfile.write(buffer, data, sample_rate, format=fmt, subtype=subtype)
            Path(tmp).write_bytes(buffer.getbuffer())
        return write

    items = [(target, Path(path).suffix, writer(song[:, :n].clamp(-1.0, 1.0).T.contiguous().numpy()))
             for target, path, song, n in zip(targets or paths, paths, waveform, lengths_samples)]
    return atomic_write_all(items, errors=(soundfile.SoundFileError,))


def write_waveform(path, waveform: torch.Tensor) -> Path:
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    return atomic_write(path, ".safetensors", lambda tmp: save_file({"waveform": waveform.contiguous()}, tmp),
                        errors=(SafetensorError,))


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


def prepare_decoding(args, codec_dir, lengths: list[int], inputs=(), other_outputs=()):
    """Before the codec loads: settings, output paths, free disk space and memory.
    Returns (device, dtype, codec folder, audio targets, waveform target, bytes the decode needs)."""
    from .cli_checks import audio_targets, check_codec_memory, check_decode_args, check_distinct
    from .codec.config import CodecConfig
    from .codec.model import resolve_codec_folder

    check_decode_args(args)
    _audio_format(Path(args.out))
    targets, wave = audio_targets(args.out, lengths, args.waveform_out)
    check_distinct(targets + [wave, *other_outputs], inputs)
    device = pick_device(args.device)
    dtype = pick_dtype(args.dtype, device, default_gpu=torch.float32)  # the codec stays fp32 unless asked
    folder = resolve_codec_folder(codec_dir)
    needed = check_codec_memory(CodecConfig.from_folder(folder), len(lengths), max(lengths), device, dtype)
    return device, dtype, folder, targets, wave, needed


def run_decoding(args, plan, codes: torch.Tensor, lengths: torch.Tensor) -> str:
    """Load the codec, decode, write the outputs; returns a summary line."""
    from .cli_sample import TerminalProgress
    from .codec import decode, load_codec

    device, dtype, folder, targets, wave, needed = plan
    codec = load_codec(folder, device=device, dtype=dtype)
    progress = TerminalProgress("decoding")
    start = time.perf_counter()
    with memory_errors(needed, device, f"Decoding {len(lengths)} song(s)", "Decode fewer songs at once."):
        waveform = decode(codec, codes, lengths, steps=args.steps, guidance=args.guidance,
                          generator=seeded_generator(args.seed, "cpu", "--seed"), on_step=progress)
    seconds = time.perf_counter() - start
    rate = codec.config.sample_rate
    samples = [int(n / 12.5 * rate) for n in lengths.tolist()]
    if wave is not None:
        write_waveform(wave, waveform)
    paths = write_audio(args.out, waveform, samples, rate, targets)
    audio_seconds = sum(samples) / rate
    return (f"decoded {audio_seconds:.2f} s of audio in {seconds:.2f} s "
            f"({seconds / max(audio_seconds, 1e-9):.3f} s per audio second) on {device} "
            f"{str(dtype).replace('torch.', '')}; wrote {', '.join(str(p) for p in paths)}")


def cmd_decode(args) -> int:
    from .cli_checks import check_decode_args
    from .codes_file import load_codes

    check_decode_args(args)
    codes, lengths = load_codes(args.codes)
    plan = prepare_decoding(args, args.model_dir, lengths.tolist(), inputs=[args.codes])
    print(run_decoding(args, plan, codes, lengths))
    return 0


def cmd_generate(args) -> int:
    """Everything that can be checked is checked before sampling: the settings of both halves, every
    output path, the codec folder, and that the codec's codebook is the one the LM samples for."""
    from .cli_checks import check_sample_args, codes_target
    from .cli_sample import run_sampling
    from .codec.config import CodecConfig
    from .codes_file import save_codes

    max_frames = check_sample_args(args)
    codec_dir = _codec_folder_near(args.model_dir)
    codes_out = codes_target(args.codes_out, "--codes-out", args.batch, max_frames) if args.codes_out else None
    plan = prepare_decoding(args, codec_dir, [max_frames] * args.batch, other_outputs=[codes_out])
    codebook_size = CodecConfig.from_folder(plan[2]).codebook_size
    codes, lengths, summary = run_sampling(args, codebook_size)
    print(summary)
    if codes_out is not None:
        save_codes(codes_out, codes, lengths)
    print(run_decoding(args, plan, codes, lengths))
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
