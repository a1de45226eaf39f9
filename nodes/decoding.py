"""HeartCodec Decode: audio tokens -> ComfyUI AUDIO (48 kHz stereo), so every audio node accepts it."""

from __future__ import annotations

from comfy_api.latest import io

from ..heartmula_core.codes import check_codes
from ..heartmula_core.settings import SongSettings
from ..heartmula_core.song import decode_song, plan_decode
from . import memory
from .base import HeartMuLaNode, widget
from .types import CodecSocket, CodesSocket, audio_output

NAMES = {"decode_seed": "seed", "decode_steps": "steps", "decode_guidance": "guidance"}  # knob -> widget


class HeartCodecDecode(HeartMuLaNode):
    """Turns audio tokens into a 48 kHz stereo waveform (flow matching, then the waveform decoder),
    window by window."""

    @classmethod
    def define_schema(cls):
        return cls.declare(
            "HeartMuLaCodecDecode", "HeartCodec Decode", inputs=[
                CodecSocket.Input("codec", tooltip="The codec from Load HeartCodec."),
                CodesSocket.Input("codes", tooltip="Audio tokens from the HeartMuLa Sampler or Load HeartMuLa Codes."),
                io.Int.Input("seed", default=0, **widget("decode_seed"), control_after_generate=True,
                             tooltip="Seed of the decoder's noise: another seed gives another rendering of "
                                     "the same song."),
                io.Int.Input("steps", default=10, **widget("decode_steps"),
                             tooltip="Euler steps of the flow-matching decoder; more is slower and a little "
                                     "cleaner."),
                io.Float.Input("guidance", default=1.25, **widget("decode_guidance"),
                               tooltip="How strongly the decoder follows the tokens (1.0 = no guidance, "
                                       "half the work)."),
            ],
            outputs=[io.Audio.Output(display_name="audio",
                                     tooltip="48 kHz stereo; songs of a batch are padded with silence to the "
                                             "longest one.")],
        )

    @classmethod
    def execute(cls, codec, codes, seed: int, steps: int, guidance: float) -> io.NodeOutput:
        settings = SongSettings(decode_seed=seed, decode_steps=steps, decode_guidance=guidance)
        _, lengths = check_codes(codes.codes, codes.lengths, "the codes input")
        plan = plan_decode(codec, len(lengths), max(lengths), settings, NAMES)  # NaN passes ComfyUI's range checks
        audio = decode_song(codec, codes.codes, codes.lengths, plan, memory.progress_reporter(steps),
                            memory.check_cancel)
        return io.NodeOutput(audio_output(audio.waveform, audio.sample_rate))


NODES = [HeartCodecDecode]
