"""Listening nodes, part 1: load HeartTranscriptor (Whisper) and transcribe the lyrics of songs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from comfy_api.latest import io

import comfy.model_management as mm

from ..heartmula_core.transcribe import (
    DEFAULT_TEMPERATURES,
    estimate_transcribe_bytes,
    load_transcriber,
    transcribe,
)
from . import listening_folders, listening_patcher, memory
from .types import CATEGORY, TranscriptorSocket

log = logging.getLogger(__name__)

LANGUAGES = ["auto", "en", "zh", "ja", "ko", "yue", "es", "fr", "de", "it", "pt", "ru", "nl", "sv", "pl",
             "tr", "ar", "hi", "id", "th", "vi", "ms", "tl", "uk"]
DTYPES = ["auto", "fp16", "fp32"]
CHUNKS_PER_BATCH = 4


@dataclass
class HeartTranscriptorModel:
    """HEARTTRANSCRIPTOR: a Whisper model in a ModelPatcher and its processor (features + tokenizer)."""

    patcher: Any
    processor: Any
    folder: Path
    dtype: torch.dtype

    @property
    def model(self):
        return self.patcher.model.inner


def _devices():
    return mm.text_encoder_device(), mm.text_encoder_offload_device()


class LoadHeartTranscriptor(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="HeartMuLaTranscriptorLoader",
            display_name="Load HeartTranscriptor",
            category=CATEGORY,
            description="Loads HeartTranscriptor, a Whisper model tuned to transcribe sung lyrics (any Whisper "
                        "folder in Hugging Face format works too).",
            inputs=[
                io.Combo.Input("model", options=listening_folders.choices("whisper"),
                               tooltip="A Whisper folder under models/HeartMuLa, e.g. HeartTranscriptor-oss."),
                io.Combo.Input("dtype", options=DTYPES, default="auto",
                               tooltip="auto = fp16 on a GPU that runs it well, fp32 on the CPU."),
                io.Boolean.Input("download_if_missing", default=False,
                                 tooltip="Fetch HeartTranscriptor-oss from the Hugging Face Hub (about 3 GB) "
                                         "when it is not there yet."),
            ],
            outputs=[TranscriptorSocket.Output(display_name="transcriptor")],
        )

    @classmethod
    def execute(cls, model: str, dtype: str, download_if_missing: bool) -> io.NodeOutput:
        folder = listening_folders.resolve("whisper", model, download_if_missing)
        load_device, offload_device = _devices()
        torch_dtype = listening_patcher.choose_dtype(dtype, load_device)
        loaded = load_transcriber(folder, dtype=torch_dtype)
        patcher = listening_patcher.wrap(loaded.model.to(offload_device), load_device, offload_device)
        log.info("HeartMuLa: loaded transcriptor %s as %s", folder, torch_dtype)
        return io.NodeOutput(HeartTranscriptorModel(patcher, loaded.processor, folder, torch_dtype))


class TranscribeLyrics(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="HeartMuLaTranscribeLyrics",
            display_name="Transcribe Lyrics",
            category=CATEGORY,
            description="Writes down the lyrics sung in each song of an AUDIO batch (one text per song). "
                        "Songs longer than 30 s are transcribed in chunks cut at quiet moments.",
            inputs=[
                TranscriptorSocket.Input("transcriptor", tooltip="From Load HeartTranscriptor."),
                io.Audio.Input("audio", tooltip="Any AUDIO: mixed to mono and resampled to 16 kHz."),
                io.Combo.Input("language", options=LANGUAGES, default="auto",
                               tooltip="Language of the lyrics; auto lets the model detect it per chunk."),
                io.Int.Input("beams", default=2, min=1, max=8,
                             tooltip="Beam search width (the official example uses 2)."),
                io.Boolean.Input("temperature_fallback", default=True,
                                 tooltip="Re-decode a chunk at temperatures 0.1, 0.2, 0.4 when its text repeats "
                                         "itself or is unlikely, as the official example does. Off: beam search "
                                         "only."),
                io.Boolean.Input("timestamps", default=False,
                                 tooltip="Prefix each line with its [start - end] time in the song."),
            ],
            outputs=[io.String.Output(display_name="lyrics", is_output_list=True,
                                      tooltip="One transcription per song of the batch.")],
        )

    @classmethod
    def execute(cls, transcriptor, audio, language: str, beams: int, temperature_fallback: bool,
                timestamps: bool) -> io.NodeOutput:
        config = transcriptor.model.config
        needed = estimate_transcribe_bytes(config, CHUNKS_PER_BATCH, beams, transcriptor.dtype)
        model = listening_patcher.load_whole(transcriptor.patcher, needed)
        temperatures = DEFAULT_TEMPERATURES if temperature_fallback else (0.0,)
        report = memory.progress_reporter(1)
        texts = transcribe(model, transcriptor.processor, audio["waveform"], audio["sample_rate"],
                           language=language, num_beams=beams, temperatures=temperatures, timestamps=timestamps,
                           batch_size=CHUNKS_PER_BATCH, on_chunk=report, check_cancel=memory.check_cancel)
        return io.NodeOutput(texts)


NODES = [LoadHeartTranscriptor, TranscribeLyrics]
