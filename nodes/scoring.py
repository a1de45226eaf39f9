"""Scoring takes: Load CLAP, CLAP style score, lyric accuracy, and keeping the best of several takes.

Scores travel as output lists (one FLOAT per song), so they can be shown per song and fed to
Pick Best Take, which (like Lyric Accuracy) receives whole lists in one call (``is_input_list``).
"""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..heartmula_core.checkpoints.sources import DEFAULT
from ..heartmula_core.errors import HeartMuLaError
from ..heartmula_core.listening.best_take import Take, describe, pick_best
from ..heartmula_core.listening.clap import clap_scores, estimate_clap_bytes, load_clap
from ..heartmula_core.listening.metrics import lyric_accuracy_batch
from . import memory
from .base import HeartMuLaNode
from .loaders import listening, load_model, loader_inputs
from .types import ClapSocket, CodesSocket, HeartMuLaCodes, PromptSocket

WINDOWS_PER_BATCH = 16


def _text_or_prompt(name: str, meaning: str, field: str, noun: str) -> list:
    """A text box ``name`` and an optional prompt whose ``field`` (tags, lyrics) stands in for an
    empty box."""
    return [io.String.Input(name, multiline=True, default="",
                            tooltip=f"{meaning}. Empty: the {field} of the connected prompt."),
            PromptSocket.Input("prompt", optional=True,
                               tooltip=f"When connected and the {name} is empty, its {field} are the {noun}.")]


def tags_as_text(tags: str) -> str:
    """The prompt's tags ('piano,happy') as a description CLAP reads ('piano, happy')."""
    return ", ".join(t.strip() for t in str(tags).split(",") if t.strip())


class LoadCLAP(HeartMuLaNode):
    """Loads a CLAP audio-text model in Hugging Face format (e.g. larger_clap_music) from models/CLAP
    or models/HeartMuLa, to score how well songs match a description."""

    @classmethod
    def define_schema(cls):
        return cls.declare("HeartMuLaClapLoader", "Load CLAP", inputs=loader_inputs(
                "clap", "model", "A CLAP folder (config.json with model_type 'clap', weights, "
                "preprocessor_config.json, tokenizer).",
                "fp32", "fp32 is exact and CLAP is small; auto = fp16 on a GPU that runs it well.",
                "Fetch larger_clap_music into models/CLAP when it is not there yet (from the Hugging Face Hub: "
                "ModelScope has no official copy)."),
            outputs=[ClapSocket.Output(display_name="clap")],
        )

    @classmethod
    def execute(cls, model: str, dtype: str, download_if_missing: bool,
                download_source: str = DEFAULT) -> io.NodeOutput:
        return io.NodeOutput(load_model("clap", model, dtype, download_if_missing, listening(load_clap),
                                        source=download_source))


class ClapScore(HeartMuLaNode):
    """How well each song matches a text (cosine similarity of CLAP audio and text embeddings, averaged
    over the song's windows; higher is better)."""

    @classmethod
    def define_schema(cls):
        return cls.declare(
            "HeartMuLaClapScore", "CLAP Score", inputs=[
                ClapSocket.Input("clap", tooltip="From Load CLAP."),
                io.Audio.Input("audio", tooltip="Any AUDIO; resampled to the model's rate and mixed to mono."),
                *_text_or_prompt("text", "The description to compare with", "tags", "description"),
            ],
            outputs=[
                io.Float.Output(display_name="score", is_output_list=True, tooltip="One score per song, in [-1, 1]."),
                io.String.Output(display_name="summary", tooltip="The text used and every song's score."),
            ],
        )

    @classmethod
    def execute(cls, clap, audio, text: str = "", prompt=None) -> io.NodeOutput:
        description = (text or "").strip()
        if not description and prompt is not None:
            description = tags_as_text(getattr(prompt, "tags", ""))
        if not description:
            raise HeartMuLaError("CLAP Score: type a description in 'text' or connect the prompt whose tags to use.")
        needed = estimate_clap_bytes(clap.model, clap.processor, WINDOWS_PER_BATCH, clap.dtype)
        memory.load_for_inference(clap.patcher, needed)
        scores = clap_scores(clap.model, clap.processor, audio["waveform"], audio["sample_rate"], [description],
                             windows_per_batch=WINDOWS_PER_BATCH, on_batch=memory.progress_reporter(1),
                             check_cancel=memory.check_cancel)
        lines = [f"CLAP score vs \"{description}\""] + [f"song {i}: {s:.4f}" for i, s in enumerate(scores)]
        return io.NodeOutput(scores, "\n".join(lines))


def _first(values, default=None):
    return values[0] if values else default


class LyricAccuracy(HeartMuLaNode):
    """Word and character error rates of each transcription against the lyrics the song was meant to
    sing (section tags, punctuation and case ignored; lower is better). Use the character rate for
    Chinese, Japanese and Korean."""

    @classmethod
    def define_schema(cls):
        return cls.declare(
            "HeartMuLaLyricAccuracy", "Lyric Accuracy",
            is_input_list=True,
            inputs=[
                io.String.Input("transcription", force_input=True,
                                tooltip="From Transcribe Lyrics: one text per song."),
                *_text_or_prompt("reference", "The intended lyrics", "lyrics", "reference"),
            ],
            outputs=[
                io.Float.Output(display_name="wer", is_output_list=True, tooltip="Word error rate per song."),
                io.Float.Output(display_name="cer", is_output_list=True, tooltip="Character error rate per song."),
                io.String.Output(display_name="summary"),
            ],
        )

    @classmethod
    def execute(cls, transcription: list, reference: list = None, prompt: list = None) -> io.NodeOutput:
        references = [r for r in (reference or []) if isinstance(r, str) and r.strip()]
        if not references and prompt:
            references = [getattr(p, "lyrics", "") for p in prompt if p is not None]
        if not references:
            raise HeartMuLaError("Lyric Accuracy: type the reference lyrics or connect the prompt they came from.")
        scores = lyric_accuracy_batch(references, [str(t) for t in transcription])
        lines = [f"song {i}: WER {s.wer:.3f}, CER {s.cer:.3f}" for i, s in enumerate(scores)]
        return io.NodeOutput([s.wer for s in scores], [s.cer for s in scores], "\n".join(lines))


def _takes(audios: list, codes_list: list | None) -> tuple[list[Take], list[HeartMuLaCodes | None]]:
    """Every song of every AUDIO value, paired in order with every song of every CODES value (if any),
    and the CODES value each take's codes came from."""
    waves = []
    for audio in audios:
        waveform = audio["waveform"]
        if not isinstance(waveform, torch.Tensor) or waveform.dim() != 3:
            raise HeartMuLaError("Pick Best Take: AUDIO waveform must be a tensor [batch, channels, samples].")
        waves += [(row, int(audio["sample_rate"])) for row in waveform]
    if not codes_list:
        return [Take(wave, rate) for wave, rate in waves], [None] * len(waves)
    codes = [(c.codes[i], int(c.lengths[i]), c.frame_rate) for c in codes_list for i in range(c.batch_size)]
    sources = [c for c in codes_list for _ in range(c.batch_size)]
    if len(codes) != len(waves):
        raise HeartMuLaError(f"Pick Best Take: codes hold {len(codes)} takes but audio holds {len(waves)}. Connect "
                             "the codes that were decoded into this audio.")
    return [Take(wave, rate, *code) for (wave, rate), code in zip(waves, codes)], sources


class PickBestTake(HeartMuLaNode):
    """Keeps the take with the highest weighted score: weight_a * score_a + weight_b * score_b. Give
    error rates (WER, CER) a negative weight, since lower is better."""

    @classmethod
    def define_schema(cls):
        return cls.declare(
            "HeartMuLaPickBestTake", "Pick Best Take",
            is_input_list=True,
            inputs=[
                io.Audio.Input("audio", tooltip="The takes (a batch, or a list of AUDIO)."),
                io.Float.Input("score_a", force_input=True, tooltip="One score per take, e.g. CLAP Score."),
                io.Float.Input("weight_a", default=1.0, min=-100.0, max=100.0, step=0.05,
                               tooltip="Positive for scores where higher is better (CLAP)."),
                CodesSocket.Input("codes", optional=True,
                                  tooltip="The takes' audio tokens, in the same order, to keep the winner's."),
                io.Float.Input("score_b", optional=True, force_input=True,
                               tooltip="A second score per take, e.g. the CER of Lyric Accuracy."),
                io.Float.Input("weight_b", default=-1.0, min=-100.0, max=100.0, step=0.05, optional=True,
                               tooltip="Negative for error rates (lower is better)."),
            ],
            outputs=[
                io.Audio.Output(display_name="audio", tooltip="The best take, without the padding of its batch."),
                CodesSocket.Output(display_name="codes", tooltip="Its audio tokens (None without codes input)."),
                io.Int.Output(display_name="index", tooltip="Its position among the takes, from 0."),
                io.String.Output(display_name="summary"),
            ],
        )

    @classmethod
    def execute(cls, audio: list, score_a: list, weight_a: list, codes: list = None, score_b: list = None,
                weight_b: list = None) -> io.NodeOutput:
        takes, sources = _takes(audio, codes)
        scores, weights = {"score_a": list(score_a)}, {"score_a": float(_first(weight_a, 1.0))}
        if score_b:
            scores["score_b"], weights["score_b"] = list(score_b), float(_first(weight_b, -1.0))
        try:
            best = pick_best(takes, scores, weights)
        except HeartMuLaError as exc:
            raise HeartMuLaError(f"Pick Best Take: {exc}") from None
        take = best.take
        best_codes = None if take.codes is None else HeartMuLaCodes(
            codes=take.codes[None], lengths=torch.tensor([take.frames]), frame_rate=take.frame_rate,
            info=dict(sources[best.index].info))
        best_audio = {"waveform": take.waveform[None].contiguous(), "sample_rate": take.sample_rate}
        return io.NodeOutput(best_audio, best_codes, best.index, describe(best, scores, {"score_a": "a", "score_b": "b"}))


NODES = [LoadCLAP, ClapScore, LyricAccuracy, PickBestTake]
