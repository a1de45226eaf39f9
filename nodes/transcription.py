"""Load HeartTranscriptor (a Whisper model) and Transcribe Lyrics: the lyrics sung in each song of an
AUDIO batch."""

from __future__ import annotations

from comfy_api.latest import io

from ..heartmula_core.checkpoints.sources import DEFAULT
from ..heartmula_core.listening.transcribe import (DEFAULT_TEMPERATURES, estimate_transcribe_bytes, load_transcriber,
                                                   transcribe)
from . import memory
from .base import HeartMuLaNode
from .loaders import listening, load_model, loader_inputs
from .types import TranscriptorSocket

LANGUAGES = ["auto", "en", "zh", "ja", "ko", "yue", "es", "fr", "de", "it", "pt", "ru", "nl", "sv", "pl",
             "tr", "ar", "hi", "id", "th", "vi", "ms", "tl", "uk"]
CHUNKS_PER_BATCH = 4


class LoadHeartTranscriptor(HeartMuLaNode):
    """Loads HeartTranscriptor, a Whisper model tuned to transcribe sung lyrics (any Whisper folder in
    Hugging Face format works too)."""

    @classmethod
    def define_schema(cls):
        return cls.declare("HeartMuLaTranscriptorLoader", "Load HeartTranscriptor", inputs=loader_inputs(
                "whisper", "model", "A Whisper folder under models/HeartMuLa, e.g. HeartTranscriptor-oss.",
                "auto", "auto = fp16 on a GPU that runs it well, fp32 on the CPU.",
                "Fetch HeartTranscriptor-oss (about 3 GB, from the download source below) when it is not there yet."),
            outputs=[TranscriptorSocket.Output(display_name="transcriptor")],
        )

    @classmethod
    def execute(cls, model: str, dtype: str, download_if_missing: bool,
                download_source: str = DEFAULT) -> io.NodeOutput:
        return io.NodeOutput(load_model("whisper", model, dtype, download_if_missing, listening(load_transcriber),
                                        source=download_source))


class TranscribeLyrics(HeartMuLaNode):
    """Writes down the lyrics sung in each song of an AUDIO batch (one text per song). Songs longer
    than 30 s are transcribed in chunks cut at quiet moments."""

    @classmethod
    def define_schema(cls):
        return cls.declare(
            "HeartMuLaTranscribeLyrics", "Transcribe Lyrics", inputs=[
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
        needed = estimate_transcribe_bytes(transcriptor.model.config, CHUNKS_PER_BATCH, beams, transcriptor.dtype)
        memory.load_for_inference(transcriptor.patcher, needed)
        temperatures = DEFAULT_TEMPERATURES if temperature_fallback else (0.0,)
        texts = transcribe(transcriptor.model, transcriptor.processor, audio["waveform"], audio["sample_rate"],
                           language=language, num_beams=beams, temperatures=temperatures, timestamps=timestamps,
                           batch_size=CHUNKS_PER_BATCH, on_chunk=memory.progress_reporter(1),
                           check_cancel=memory.check_cancel)
        return io.NodeOutput(texts)


NODES = [LoadHeartTranscriptor, TranscribeLyrics]
