"""`python -m heartmula_core sample`: lyrics + tags -> codes file (the LM half of the pipeline)."""

from __future__ import annotations

import argparse

from ..codes import FRAME_RATE, load_codes
from ..errors import SettingsError
from ..lm.prefix import Prefix, kept_lengths, kept_per_song
from ..runtime import DEVICE_CHOICES, DTYPE_CHOICES, memory_errors, pick_device, pick_dtype
from ..text_input import text_or_file
from .checks import check_distinct, check_lm_memory, check_sample_args, codes_target
from .progress import StepBar
from .quantize import add_weight_dtype_option


def add_sample_options(p: argparse.ArgumentParser) -> None:
    """Options shared by `sample` and `generate` (a public interface: keep names stable)."""
    p.add_argument("--model-dir", required=True, help="HeartMuLa LM folder (or the root that holds it)")
    p.add_argument("--tags", required=True, help="style tags, or a file holding them")
    p.add_argument("--lyrics", required=True, help="lyrics, or a file holding them")
    p.add_argument("--seconds", type=float, default=30.0, help=f"maximum length; round(S x {FRAME_RATE}) frames")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top-k", type=int, default=50)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--cfg", type=float, default=1.5, help="classifier-free guidance scale (1.0 = off)")
    p.add_argument("--batch", type=int, default=1, help="independent songs sampled together")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES)
    add_weight_dtype_option(p, "weights")
    p.add_argument("--continue-from", metavar="CODES", help="codes file (from 'sample' or Save HeartMuLa Codes) "
                   "whose songs to continue, each --batch times; --seconds counts the whole song")
    p.add_argument("--keep-seconds", type=float, help="keep the first S seconds of each song and write the rest "
                   "anew (a variation); default: keep all (extend)")


def read_prefix(args) -> Prefix | None:
    """--continue-from and --keep-seconds: the frames to keep of each song; None for new songs.
    Checked against the LM in ``prepare_sampling``, before its weights load."""
    if args.continue_from is None:
        if args.keep_seconds is not None:
            raise SettingsError("--keep-seconds says how much of a song to keep; give the song with --continue-from.")
        return None
    codes, lengths = load_codes(args.continue_from)
    keep = -1 if args.keep_seconds is None else args.keep_seconds
    return Prefix(codes, kept_lengths(lengths.tolist(), keep, "--keep-seconds"))


def songs_of(args, prefix: Prefix | None) -> int:
    """Songs a run writes: --batch, for each song of --continue-from."""
    return args.batch * (len(prefix.lengths) if prefix else 1)


def prepare_sampling(args, device, dtype, codebook_size: int | None = None, prefix: Prefix | None = None):
    """Before the weights load: the prompt (and any kept frames) fits the context, the LM's audio ids
    fit the codec's codebook, the kept frames are this LM's codes, and the batch fits in memory.
    Returns (prompt, frame limit, bytes the generation needs)."""
    from ..lm.budget import check_fits
    from ..lm.config import GenConfig, HeartMuLaConfig
    from ..lm.load import load_tokenizer, resolve_lm_folder
    from ..lm.prompt import build_prompt
    from ..lm.vocab import audio_vocab

    max_frames = check_sample_args(args)
    files = resolve_lm_folder(args.model_dir)
    config = HeartMuLaConfig.from_file(files.config)
    gen_config = GenConfig.from_file(files.gen_config)
    prompt = build_prompt(load_tokenizer(files.tokenizer), gen_config, text_or_file(args.tags, "tags"),
                          text_or_file(args.lyrics, "lyrics"))
    audio_vocab(config.audio_vocab_size, gen_config.audio_eos_id, codebook_size)
    kept = kept_per_song(prefix, config, gen_config.audio_eos_id, args.batch, codebook_size,
                         f"--continue-from {args.continue_from}")
    check_fits(config, prompt, max_frames, kept)
    return prompt, max_frames, check_lm_memory(args, files, config, prompt, max_frames, device, dtype, kept)


def run_sampling(args, codebook_size: int | None = None, prefix: Prefix | None = None):
    """Load the LM and sample (continuing ``prefix`` when given); returns (codes, lengths, summary line)."""
    from ..lm.generate import generate
    from ..lm.load import load_lm
    from ..quant.formats import parse_weight_dtype

    device = pick_device(args.device)
    dtype = pick_dtype(args.dtype, device)
    prompt, max_frames, needed = prepare_sampling(args, device, dtype, codebook_size, prefix)
    lm = load_lm(args.model_dir, device=device, dtype=dtype, weight_dtype=parse_weight_dtype(args.weight_dtype))
    songs = songs_of(args, prefix)
    with StepBar("sampling", "frame") as bar, \
            memory_errors(needed, device, f"Sampling {songs} song(s)", "Lower --batch or --seconds."):
        result = generate(lm.model, prompt, max_frames=max_frames, eos_id=lm.gen_config.audio_eos_id,
                          temperature=args.temperature, top_k=args.top_k, cfg_scale=args.cfg, batch_size=args.batch,
                          seed=args.seed, device=device, on_frame=bar, codebook_size=codebook_size,
                          prefix=prefix.codes if prefix else None,
                          prefix_lengths=prefix.lengths if prefix else None)
        bar(result.frames_run, result.frames_run)  # every song ended early: the bar ends full there
    frames = int(result.frames_run)
    fps = (frames - 1) / result.frame_seconds if result.frame_seconds > 0 else float("inf")
    kept = f" (continued from {prefix.lengths} frames)" if prefix else ""
    summary = (f"sampled {songs} song(s){kept}, lengths {result.lengths.tolist()} frames "
               f"({[round(n / FRAME_RATE, 2) for n in result.lengths.tolist()]} s), {fps:.1f} frames/s "
               f"({result.ms_per_frame:.1f} ms/frame, prompt {result.prompt_seconds * 1000:.0f} ms) "
               f"on {device} {str(dtype).replace('torch.', '')}")
    return result.codes, result.lengths, summary


def cmd_sample(args) -> int:
    from ..codes import save_codes

    max_frames = check_sample_args(args)
    prefix = read_prefix(args)
    target = codes_target(args.codes_out, "--codes-out", songs_of(args, prefix), max_frames)
    check_distinct([target], [args.continue_from] if prefix else [])
    codes, lengths, summary = run_sampling(args, prefix=prefix)
    save_codes(target, codes, lengths)
    print(f"{summary}; wrote {args.codes_out}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("sample", help="lyrics + tags -> codes.safetensors")
    add_sample_options(p)
    p.add_argument("--codes-out", required=True, help="output .safetensors with codes [B,8,T] and lengths [B]")
    p.set_defaults(func=cmd_sample)
