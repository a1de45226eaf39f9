"""The one song path every front door takes: settings -> checked plan -> codes -> audio.

``plan_song`` / ``plan_decode`` check everything before any weights load; ``sample_song``,
``decode_song`` and ``make_song`` run a plan. The models are anything with the members of
``models.LMModel`` / ``models.CodecModel``: ``LMFolder`` / ``CodecFolder`` for the command line
and the batch runner, the loader nodes' values inside ComfyUI.
"""

from .models import CodecFolder, CodecModel, LMFolder, LMForChecks, LMModel
from .plan import DecodePlan, SongPlan, plan_decode, plan_song, prompt_for, read_start, song_start
from .run import Audio, Song, decode_song, make_song, sample_song

__all__ = [
    "Audio", "CodecFolder", "CodecModel", "DecodePlan", "LMFolder", "LMForChecks", "LMModel", "Song", "SongPlan",
    "decode_song", "make_song", "plan_decode", "plan_song", "prompt_for", "read_start", "sample_song", "song_start",
]
