"""HeartCodec Decode: audio tokens -> ComfyUI AUDIO (48 kHz stereo), so every audio node accepts it."""

from __future__ import annotations

from comfy_api.latest import io

from ..heartmula_core.codec import decode, estimate_decode_bytes
from ..heartmula_core.codes import check_codes
from ..heartmula_core.settings import MAX_SEED, check_decoding, seeded_generator
from . import memory
from .base import CATEGORY, HeartMuLaNode
from .types import CodecSocket, CodesSocket, audio_output


class HeartCodecDecode(HeartMuLaNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="HeartMuLaCodecDecode",
            display_name="HeartCodec Decode",
            category=CATEGORY,
            description="Turns audio tokens into a 48 kHz stereo waveform (flow matching, then the "
                        "waveform decoder), window by window.",
            inputs=[
                CodecSocket.Input("codec", tooltip="The codec from Load HeartCodec."),
                CodesSocket.Input("codes", tooltip="Audio tokens from the HeartMuLa Sampler or Load HeartMuLa Codes."),
                io.Int.Input("seed", default=0, min=0, max=MAX_SEED, control_after_generate=True,
                             tooltip="Seed of the decoder's noise: another seed gives another rendering of "
                                     "the same song."),
                io.Int.Input("steps", default=10, min=1, max=100,
                             tooltip="Euler steps of the flow-matching decoder; more is slower and a little "
                                     "cleaner."),
                io.Float.Input("guidance", default=1.25, min=0.0, max=10.0, step=0.05,
                               tooltip="How strongly the decoder follows the tokens (1.0 = no guidance, "
                                       "half the work)."),
            ],
            outputs=[io.Audio.Output(display_name="audio",
                                     tooltip="48 kHz stereo; songs of a batch are padded with silence to the "
                                             "longest one.")],
        )

    @classmethod
    def execute(cls, codec, codes, seed: int, steps: int, guidance: float) -> io.NodeOutput:
        model = codec.model
        check_decoding(steps, guidance)  # NaN passes ComfyUI's range checks
        generator = seeded_generator(seed)
        check_codes(codes.codes, codes.lengths, "the codes input")
        needed = estimate_decode_bytes(model.config, codes.batch_size, codec.dtype, frames=int(codes.lengths.max()))
        memory.load_for_inference(codec.patcher, needed)
        waveform = decode(model, codes.codes, codes.lengths, steps=steps, guidance=guidance, generator=generator,
                          on_step=memory.progress_reporter(steps), check_cancel=memory.check_cancel)
        return io.NodeOutput(audio_output(waveform, model.config.sample_rate))


NODES = [HeartCodecDecode]
