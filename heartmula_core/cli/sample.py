"""`python -m heartmula_core sample`: lyrics + tags -> codes file (the LM half of the pipeline).
The flags become the song path's settings (options.py); the song path checks and runs them."""

from __future__ import annotations

from ..codes import FRAME_RATE, save_codes
from ..quant.storage import WeightStorage
from ..runtime import memory_errors, pick_device, pick_dtype
from ..settings import SongSettings
from ..song import LMFolder, SongPlan, plan_song, prompt_for, read_start, sample_song
from ..text_input import text_or_file
from .checks import check_codes_space, check_distinct, codes_target
from .options import NAMES, add_sample_options, song_settings
from .progress import StepBar


def plan_sampling(args, settings: SongSettings, start, codebook_size: int | None = None) -> tuple[LMFolder, SongPlan]:
    """The LM folder (weights not loaded yet) and the checked plan: prompt, context, the songs to
    continue against the LM, the codec's codebook (``codebook_size``) and memory."""
    device = pick_device(args.device)
    lm = LMFolder(args.model_dir, device, pick_dtype(args.dtype, device), WeightStorage.named(settings.weight_dtype),
                  settings.loras)
    prompt = prompt_for(lm, text_or_file(args.tags, "tags"), text_or_file(args.lyrics, "lyrics"))
    return lm, plan_song(lm, prompt, settings, start, codebook_size, NAMES)


def run_sampling(lm: LMFolder, plan: SongPlan):
    """Load the LM and sample; returns (codes, lengths, summary line)."""
    with StepBar("sampling", "frame") as bar, \
            memory_errors(plan.generation_bytes, lm.device, f"Sampling {plan.songs} song(s)", "Lower --batch or --seconds."):
        result = sample_song(lm, plan, bar)
        bar(result.frames_run, result.frames_run)  # every song ended early: the bar ends full there
    frames = int(result.frames_run)
    fps = (frames - 1) / result.frame_seconds if result.frame_seconds > 0 else float("inf")
    kept = f" (continued from {plan.start.lengths} frames)" if plan.start else ""
    kept += "".join(f" with LoRA {path} at {strength:g}" for path, strength in plan.settings.loras)
    summary = (f"sampled {plan.songs} song(s){kept}, lengths {result.lengths.tolist()} frames "
               f"({[round(n / FRAME_RATE, 2) for n in result.lengths.tolist()]} s), {fps:.1f} frames/s "
               f"({result.ms_per_frame:.1f} ms/frame, prompt {result.prompt_seconds * 1000:.0f} ms) "
               f"on {lm.device} {str(lm.dtype).replace('torch.', '')}")
    return result.codes, result.lengths, summary


def cmd_sample(args) -> int:
    settings = song_settings(args)
    start = read_start(settings, NAMES)
    target = codes_target(args.codes_out, "--codes-out")
    check_distinct([target], [settings.continue_from] if start else [])
    lm, plan = plan_sampling(args, settings, start)
    check_codes_space(target, plan.songs, plan.max_frames)
    codes, lengths, summary = run_sampling(lm, plan)
    save_codes(target, codes, lengths)
    print(f"{summary}; wrote {args.codes_out}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("sample", help="lyrics + tags -> codes.safetensors")
    add_sample_options(p)
    p.add_argument("--codes-out", required=True, help="output .safetensors with codes [B,8,T] and lengths [B]")
    p.set_defaults(func=cmd_sample)
