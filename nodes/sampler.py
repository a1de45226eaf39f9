"""HeartMuLa Sampler (prompt -> audio tokens, HEARTMULA_CODES) and HeartMuLa Continue Song (saved
tokens + prompt -> a longer song, or the same start with a new ending). The only nodes that run the
LM, kept apart from decoding so that changing decode settings never re-runs them.

Continuing is its own node rather than two optional inputs on the Sampler: on the canvas its codes
socket is required and its title says what it does, the Sampler keeps no widget that does nothing
until a socket is linked, and saved workflows keep the Sampler's widget list.
"""

from __future__ import annotations

from comfy_api.latest import io

from ..heartmula_core.codes import FRAME_RATE
from ..heartmula_core.settings import SongSettings
from ..heartmula_core.song import plan_song, sample_song, song_start
from . import memory
from .base import HeartMuLaNode, schema, widget
from .types import CodesSocket, HeartMuLaCodes, LMSocket, PromptSocket


def sampling_inputs(seconds: float, seconds_tip: str, batch_tip: str) -> list:
    """The settings both nodes share: seed, length limit, temperature, top-k, guidance, batch."""
    return [
        io.Int.Input("seed", default=0, **widget("seed"), control_after_generate=True,
                     tooltip="Random seed. The same seed and settings give the same song."),
        io.Float.Input("seconds", default=seconds, **widget("seconds"), tooltip=seconds_tip),
        io.Float.Input("temperature", default=1.0, **widget("temperature"),
                       tooltip="Randomness of each token; lower is safer, higher more varied."),
        io.Int.Input("top_k", default=50, **widget("top_k"),
                     tooltip="Sample only among the k most likely tokens (1 = always the most likely)."),
        io.Float.Input("cfg_scale", default=1.5, **widget("cfg_scale"),
                       tooltip="Classifier-free guidance: how strongly the tags and lyrics steer the "
                               "song. 1.0 turns guidance off and runs twice as fast."),
        io.Int.Input("batch_size", default=1, **widget("batch_size"), tooltip=batch_tip),
    ]


def run_lm(lm, prompt, seed, seconds, temperature, top_k, cfg_scale, batch_size, start=None,
           info: dict | None = None) -> io.NodeOutput:
    """The song path with the node's widgets (their names are the song path's): check everything
    before any memory moves, let ComfyUI load the LM, sample (continuing ``start``)."""
    # ComfyUI's range checks let NaN through (every comparison with NaN is false): the song path checks
    settings = SongSettings(seed=seed, seconds=seconds, temperature=temperature, top_k=top_k, cfg_scale=cfg_scale,
                            batch_size=batch_size)
    plan = plan_song(lm, prompt, settings, start)
    result = sample_song(lm, plan, memory.progress_reporter(plan.new_frames), memory.check_cancel)
    info = {"model": lm.folder.name, "seed": str(seed), "tags": prompt.tags, "lyrics": prompt.lyrics,
            "temperature": str(temperature), "top_k": str(top_k), "cfg_scale": str(cfg_scale), **(info or {})}
    return io.NodeOutput(HeartMuLaCodes(result.codes, result.lengths, FRAME_RATE, info))


def lm_schema(node_id: str, display_name: str, description: str, inputs: list, output_tip: str) -> io.Schema:
    """The schema both LM nodes share: the LM and the prompt, then ``inputs``, one codes output."""
    return schema(
        node_id, display_name, description,
        inputs=[LMSocket.Input("lm", tooltip="The LM from Load HeartMuLa LM."),
                PromptSocket.Input("prompt", tooltip="Tags and lyrics from HeartMuLa Lyrics & Tags."), *inputs],
        outputs=[CodesSocket.Output(display_name="codes", tooltip=output_tip)],
    )


class HeartMuLaSampler(HeartMuLaNode):
    @classmethod
    def define_schema(cls):
        return lm_schema(
            "HeartMuLaSampler", "HeartMuLa Sampler",
            f"Writes the song as audio tokens, {FRAME_RATE} frames per second, until the model ends it or the "
            "length limit is reached.",
            sampling_inputs(120.0, "Longest song to write, in seconds; it usually ends earlier by itself. Prompt "
                                   "plus song must fit the model's context (8192 positions).",
                            "Songs written at once from the same prompt (each different)."),
            "Audio tokens; decode them with HeartCodec Decode or save them.")

    @classmethod
    def execute(cls, lm, prompt, seed: int, seconds: float, temperature: float, top_k: int, cfg_scale: float,
                batch_size: int) -> io.NodeOutput:
        return run_lm(lm, prompt, seed, seconds, temperature, top_k, cfg_scale, batch_size)


class HeartMuLaContinueSong(HeartMuLaNode):
    @classmethod
    def define_schema(cls):
        keep = io.Float.Input(
            "keep_seconds", default=-1.0, **widget("keep_seconds"),
            tooltip="-1 keeps each whole song and writes on (extend). N keeps the first N seconds and writes the "
                    "rest anew (a variation: another seed, another ending). Every song must be at least N s long.")
        song = CodesSocket.Input("continue_from", tooltip="The song(s) to continue: audio tokens from the Sampler "
                                                          "or Load HeartMuLa Codes. Every song of a batch is continued.")
        return lm_schema(
            "HeartMuLaContinueSong", "HeartMuLa Continue Song",
            "Continues saved audio tokens: keeps a whole song and writes on (extend it), or keeps its first seconds "
            "and writes a new ending (a variation). The tags and lyrics may differ from the ones the song was "
            "written with (say, one more verse).",
            [song, keep, *sampling_inputs(240.0, "Longest song, in seconds, counting the kept part: more than the "
                                                 "part kept. Prompt plus song must fit the model's context (8192 "
                                                 "positions).",
                                          "Continuations written for each song of continue_from (each different).")],
            "The whole songs (kept part, then the new part); decode or save them.")

    @classmethod
    def execute(cls, lm, prompt, continue_from, keep_seconds: float, seed: int, seconds: float, temperature: float,
                top_k: int, cfg_scale: float, batch_size: int) -> io.NodeOutput:
        start = song_start(continue_from.codes, continue_from.lengths.tolist(), keep_seconds)
        origin = continue_from.info.get("file") or f"seed {continue_from.info.get('seed', '?')}"
        info = {"continued_from": origin, "keep_seconds": str(keep_seconds)}
        return run_lm(lm, prompt, seed, seconds, temperature, top_k, cfg_scale, batch_size, start, info)


NODES = [HeartMuLaSampler, HeartMuLaContinueSong]
