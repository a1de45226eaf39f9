"""Open the audio files ComfyUI wrote and report rate, channels and exact length."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class AudioFileInfo:
    sample_rate: int
    channels: int
    samples: int

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate


def read_audio_info(path: Path) -> AudioFileInfo:
    """Decode the whole file (headers of some formats do not state the length) with av, else soundfile."""
    try:
        import av
    except ImportError:
        av = None
    if av is not None:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate
            channels = stream.codec_context.channels
            samples = sum(frame.samples for frame in container.decode(stream))
        return AudioFileInfo(rate, channels, samples)
    import soundfile

    info = soundfile.info(str(path))
    return AudioFileInfo(info.samplerate, info.channels, info.frames)
