"""Prompt nodes: tags + lyrics -> HEARTMULA_PROMPT, and a helper that writes the tags string."""

from __future__ import annotations

import re

from comfy_api.latest import io

from ..heartmula_core.errors import PromptError
from ..heartmula_core.lm.prompt import build_prompt
from ..heartmula_core.text_input import names_a_file
from .base import HeartMuLaNode
from .types import LMSocket, PromptSocket

TAGS_EXAMPLE = "piano,happy,wedding,synthesizer,romantic"
LYRICS_EXAMPLE = (
    "[Intro]\n\n[Verse]\nThe sun creeps in across the floor\nI hear the traffic outside the door\n\n"
    "[Chorus]\nEvery day the light returns\nEvery day the fire burns\n\n[Outro]\nJust another day"
)


class HeartMuLaLyricsTags(HeartMuLaNode):
    """Turns the style tags and the lyrics into the LM's prompt."""

    @classmethod
    def define_schema(cls):
        return cls.declare(
            "HeartMuLaLyricsTags", "HeartMuLa Lyrics & Tags", inputs=[
                LMSocket.Input("lm", tooltip="The LM whose tokenizer encodes the text."),
                io.String.Input("tags", multiline=True, placeholder=TAGS_EXAMPLE,
                                tooltip="Style tags, comma-separated without spaces, e.g. " + TAGS_EXAMPLE
                                        + ". Lower-cased for you. The HeartMuLa Tags node can write them."),
                io.String.Input("lyrics", multiline=True, placeholder=LYRICS_EXAMPLE,
                                tooltip="The lyrics, one line per sung line, with section markers such as "
                                        "[Intro] [Verse] [Prechorus] [Chorus] [Bridge] [Outro]."),
            ],
            outputs=[PromptSocket.Output(display_name="prompt", tooltip="Prompt tokens for the HeartMuLa Sampler.")],
        )

    @classmethod
    def execute(cls, lm, tags: str, lyrics: str) -> io.NodeOutput:
        for what, text in (("tags", tags), ("lyrics", lyrics)):
            refuse_file_path(text, what)
        return io.NodeOutput(build_prompt(lm.tokenizer, lm.gen_config, tags, lyrics))


def refuse_file_path(text: str, what: str) -> None:
    """The command line reads a file when given its path; a server must never read files on the
    host from a text box, so a box that names one is refused rather than taken as the text."""
    path = names_a_file(text) if isinstance(text, str) else None
    if path is not None:
        raise PromptError(f"The {what} box holds the path of a file ({path}); this node takes the text "
                          f"itself. Paste the {what} into the box.")


# Vocabulary users report working (heartlib issue #17) grouped by the paper's tag categories.
TAG_VOCABULARY: dict[str, list[str]] = {
    "genre": ["pop", "rock", "jazz", "classical", "electronic", "blues", "country", "metal", "funk", "reggae",
              "hip-hop", "rap", "indie", "folk", "soul", "r&b", "latin", "dance", "disco", "techno", "house",
              "ambient"],
    "instruments": ["piano", "guitar", "acoustic guitar", "electric guitar", "bass", "drums", "violin", "cello",
                   "saxophone", "trumpet", "flute", "clarinet", "organ", "synthesizer", "keyboard", "harp",
                   "banjo", "harmonica", "ukulele", "accordion"],
    "mood": ["happy", "sad", "romantic", "energetic", "calm", "peaceful", "melancholic", "upbeat", "chill", "dark",
             "bright", "dreamy", "aggressive", "gentle", "intense", "relaxing", "cheerful", "nostalgic",
             "dramatic", "playful"],
    "tempo": ["fast", "slow", "medium", "downtempo", "steady", "syncopated", "groove", "driving", "flowing",
              "bouncy", "rhythmic"],
    "style": ["acoustic", "electronic", "orchestral", "minimal", "atmospheric", "cinematic", "experimental",
              "traditional", "modern", "vintage", "lo-fi", "hi-fi", "raw", "polished", "live", "studio"],
    "occasion": ["wedding", "party", "dance", "meditation", "workout", "sleep", "focus", "celebration", "romance",
                 "adventure", "nature", "urban", "fantasy"],
    "vocal": ["male voice", "female voice", "choir", "acappella", "vocal harmony", "rap", "singing"],
}
NONE = "none"


def normalise_tags(parts) -> str:
    """Tags in the model's format: lower case, comma-separated without spaces around commas, each
    tag once, in the order given."""
    seen: list[str] = []
    for part in parts:
        for tag in str(part).split(","):
            tag = re.sub(r"\s+", " ", tag).strip().lower()
            if tag and tag != NONE and tag not in seen:
                seen.append(tag)
    return ",".join(seen)


class HeartMuLaTags(HeartMuLaNode):
    """Builds the tags string from one choice per category plus free text."""

    @classmethod
    def define_schema(cls):
        category_inputs = [
            io.Combo.Input(name, options=[NONE] + words, default=NONE,
                           tooltip=f"One tag from the {name} category ({NONE}: leave the category out).")
            for name, words in TAG_VOCABULARY.items()
        ]
        return cls.declare("HeartMuLaTags", "HeartMuLa Tags", inputs=category_inputs + [
                io.String.Input("extra", default="", placeholder="more tags, comma-separated",
                                tooltip="Any further tags, comma-separated (e.g. 'synthesizer,romantic'); "
                                        "they follow the chosen ones."),
            ],
            outputs=[io.String.Output(display_name="tags",
                                      tooltip="Lower-case, comma-separated tags for HeartMuLa Lyrics & Tags.")],
        )

    @classmethod
    def execute(cls, extra: str = "", **choices: str) -> io.NodeOutput:
        chosen = [choices.get(name, NONE) for name in TAG_VOCABULARY]
        return io.NodeOutput(normalise_tags(chosen + [extra]))


NODES = [HeartMuLaLyricsTags, HeartMuLaTags]
