"""HeartMuLa Sampler: prompt -> audio tokens (HEARTMULA_CODES). The only node that runs the LM, kept
apart from decoding so that changing decode settings never re-runs it."""

from __future__ import annotations

from comfy_api.latest import io

from ..heartmula_core.codes import FRAME_RATE
from ..heartmula_core.lm.budget import check_fits, estimate_generation_bytes, frames_for_seconds
from ..heartmula_core.lm.generate import generate
from ..heartmula_core.settings import MAX_SEED, check_sampling, check_seed
from . import memory
from .base import CATEGORY, HeartMuLaNode
from .types import CodesSocket, HeartMuLaCodes, LMSocket, PromptSocket


class HeartMuLaSampler(HeartMuLaNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="HeartMuLaSampler",
            display_name="HeartMuLa Sampler",
            category=CATEGORY,
            description=f"Writes the song as audio tokens, {FRAME_RATE} frames per second, until the model ends it "
                        "or the length limit is reached.",
            inputs=[
                LMSocket.Input("lm", tooltip="The LM from Load HeartMuLa LM."),
                PromptSocket.Input("prompt", tooltip="Tags and lyrics from HeartMuLa Lyrics & Tags."),
                io.Int.Input("seed", default=0, min=0, max=MAX_SEED, control_after_generate=True,
                             tooltip="Random seed. The same seed and settings give the same song."),
                io.Float.Input("seconds", default=120.0, min=1.0, max=600.0, step=1.0,
                               tooltip="Longest song to write, in seconds; it usually ends earlier by itself. "
                                       "Prompt plus song must fit the model's context (8192 positions)."),
                io.Float.Input("temperature", default=1.0, min=0.05, max=4.0, step=0.05,
                               tooltip="Randomness of each token; lower is safer, higher more varied."),
                io.Int.Input("top_k", default=50, min=1, max=8192,
                             tooltip="Sample only among the k most likely tokens (1 = always the most likely)."),
                io.Float.Input("cfg_scale", default=1.5, min=1.0, max=10.0, step=0.1,
                               tooltip="Classifier-free guidance: how strongly the tags and lyrics steer the "
                                       "song. 1.0 turns guidance off and runs twice as fast."),
                io.Int.Input("batch_size", default=1, min=1, max=64,
                             tooltip="Songs written at once from the same prompt (each different)."),
            ],
            outputs=[CodesSocket.Output(display_name="codes",
                                        tooltip="Audio tokens; decode them with HeartCodec Decode or save them.")],
        )

    @classmethod
    def execute(cls, lm, prompt, seed: int, seconds: float, temperature: float, top_k: int, cfg_scale: float,
                batch_size: int) -> io.NodeOutput:
        model = lm.model
        # ComfyUI's range checks let NaN through (every comparison with NaN is false): check here,
        # before any memory is moved
        check_seed(seed)
        check_sampling(temperature, top_k, cfg_scale, batch_size)
        max_frames = frames_for_seconds(seconds)
        check_fits(lm.config, prompt, max_frames)
        needed = estimate_generation_bytes(lm.config, prompt.length, max_frames, batch_size, cfg_scale, lm.dtype)
        device = memory.load_for_inference(lm.patcher, needed)
        report = memory.progress_reporter(max_frames)
        result = generate(
            model, prompt, max_frames=max_frames, eos_id=lm.gen_config.audio_eos_id, temperature=temperature,
            top_k=top_k, cfg_scale=cfg_scale, batch_size=batch_size, seed=seed, device=device, dtype=lm.dtype,
            on_frame=report, check_cancel=memory.check_cancel,
        )
        if result.frames_run < max_frames:  # ended by itself: a full bar (ComfyUI always sends a full one)
            report(result.frames_run, result.frames_run)
        info = {"model": lm.folder.name, "seed": str(seed), "tags": prompt.tags, "lyrics": prompt.lyrics,
                "temperature": str(temperature), "top_k": str(top_k), "cfg_scale": str(cfg_scale)}
        return io.NodeOutput(HeartMuLaCodes(result.codes, result.lengths, FRAME_RATE, info))


NODES = [HeartMuLaSampler]
