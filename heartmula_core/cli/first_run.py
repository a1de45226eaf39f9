"""``--download`` of ``generate`` and ``batch``: a first run fetches the official models into
``--model-dir`` (checkpoints/fetch.py) from the Hugging Face Hub or ModelScope (``--source``);
without it, a folder that lacks them is one error naming the ``hf download`` and ``modelscope
download`` commands and this switch."""

from __future__ import annotations

import argparse
import sys

from ..checkpoints.fetch import fetch_models
from ..checkpoints.sources import CHOICES, SOURCE_ENV

DOWNLOAD_HELP = ("fetch what --model-dir lacks of the official LM (HeartMuLa-oss-3B), codec (HeartCodec-oss), "
                 "tokenizer.json and gen_config.json first (several GB, once)")
SOURCE_HELP = (f"where --download fetches from: hf (the Hugging Face Hub) or modelscope (ModelScope; pip install "
               f"modelscope). Default: the {SOURCE_ENV} environment variable, else hf")


def add_download_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--download", action="store_true", help=DOWNLOAD_HELP)
    p.add_argument("--source", choices=CHOICES, help=SOURCE_HELP)


def say(message: str) -> None:
    print(message, file=sys.stderr)


def fetch_missing(args) -> None:
    """Before any model loads (and after the settings were checked): the models are there, or fetched."""
    fetch_models(args.model_dir, args.download, say=say, source=args.source,
                 with_codec=getattr(args, "codec_dir", None) is None)
