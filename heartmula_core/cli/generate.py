"""`python -m heartmula_core generate`: lyrics + tags -> audio file (sample, then decode), with
``--download`` for a first run. Everything that can be checked is checked before sampling: the
settings of both halves, the model folders (fetched first with --download), every output path, and
that the codec's codebook is the one the LM samples for."""

from __future__ import annotations

from ..checkpoints.folders import codec_folder_for
from ..codes import save_codes
from ..song import read_start
from .checks import check_codes_space, codes_target
from .decode import codec_folder, plan_decoding, run_decoding
from .first_run import add_download_option, fetch_missing
from .options import NAMES, PICK_CODEC, add_codec_dir_option, add_decode_options, add_sample_options, song_settings
from .sample import plan_sampling, run_sampling


def cmd_generate(args) -> int:
    settings = song_settings(args)  # every setting before a download of several GB
    start = read_start(settings, NAMES)
    fetch_missing(args)
    codec = codec_folder(args, settings, codec_folder_for(args.model_dir, args.codec_dir, PICK_CODEC))
    codes_out = codes_target(args.codes_out, "--codes-out") if args.codes_out else None
    lm, plan = plan_sampling(args, settings, start, codec.config.codebook_size)  # memory: before counting songs
    decoding = plan_decoding(args, settings, codec, [plan.max_frames] * plan.songs,
                             inputs=[settings.continue_from] if start else (), other_outputs=[codes_out])
    if codes_out is not None:
        check_codes_space(codes_out, plan.songs, plan.max_frames)
    codes, lengths, summary = run_sampling(lm, plan)
    del lm  # the LM's weights go before the codec's load
    print(summary)
    if codes_out is not None:
        save_codes(codes_out, codes, lengths)
    print(run_decoding(args, decoding, codes, lengths))
    return 0


def register(subparsers) -> None:
    g = subparsers.add_parser("generate", help="lyrics + tags -> audio file (sample, then decode)")
    add_sample_options(g)
    add_decode_options(g)
    g.add_argument("--codes-out", help="also save the sampled codes")
    add_codec_dir_option(g)
    add_download_option(g)
    g.set_defaults(func=cmd_generate)
