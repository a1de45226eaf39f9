"""Lyric accuracy: how closely a transcription matches the lyrics a song was asked to sing.

Both texts are normalised the same way before comparing, so that formatting the transcriber cannot
know about does not count as an error: section tags such as ``[Verse]`` or ``[Chorus 2]`` and
timestamps such as ``[00:12.50]`` are dropped, punctuation and symbols become spaces, apostrophes
inside words are removed ("don't" == "dont"), case is folded and runs of whitespace collapse.

Word error rate (WER) counts words separated by spaces, so it is only meaningful for languages
written with spaces. Character error rate (CER) is computed on the normalised text with all
whitespace removed; it is the number that means something for Chinese, Japanese and Korean, and it
does not depend on where a transcriber happens to put spaces between CJK characters.
The edit distances come from ``jiwer``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence

from ..errors import HeartMuLaError

# Anything in square brackets on one line: [Verse], [Pre-Chorus], [00:12.50], [Instrumental].
_BRACKETED = re.compile(r"\[[^\[\]\n]*\]")
_APOSTROPHES = "'\u2019\u02bc`"


@dataclass(frozen=True)
class LyricScore:
    """Error rates of one transcription against its reference (0 = perfect; may exceed 1)."""

    wer: float
    cer: float
    reference_words: int
    reference_chars: int


def normalise_lyrics(text: str) -> str:
    """Lyrics -> lower-case words separated by single spaces, without tags or punctuation."""
    text = unicodedata.normalize("NFKC", text)
    text = _BRACKETED.sub(" ", text)
    out = []
    for ch in text:
        if ch in _APOSTROPHES:
            continue
        category = unicodedata.category(ch)
        if category[0] in "PSC" or ch.isspace():
            out.append(" ")
        else:
            out.append(ch)
    return " ".join("".join(out).casefold().split())


def lyric_accuracy(reference: str, transcription: str) -> LyricScore:
    """WER and CER of one transcription; raises when the reference has no words to compare."""
    import jiwer

    ref = normalise_lyrics(reference)
    hyp = normalise_lyrics(transcription)
    if not ref:
        raise HeartMuLaError(
            "Lyric Accuracy: the reference lyrics are empty once section tags like [Verse] and "
            "punctuation are removed. Connect the lyrics the song was generated from."
        )
    ref_chars = ref.replace(" ", "")
    hyp_chars = hyp.replace(" ", "")
    if hyp:
        wer = float(jiwer.wer(ref, hyp))
        cer = float(jiwer.cer(ref_chars, hyp_chars))
    else:  # nothing heard: every reference word / character is a deletion
        wer, cer = 1.0, 1.0
    return LyricScore(wer=wer, cer=cer, reference_words=len(ref.split()), reference_chars=len(ref_chars))


def lyric_accuracy_batch(references: Sequence[str], transcriptions: Sequence[str]) -> list[LyricScore]:
    """One score per transcription; a single reference is compared with every transcription."""
    references = list(references)
    transcriptions = list(transcriptions)
    if len(references) == 1 and len(transcriptions) > 1:
        references = references * len(transcriptions)
    if len(references) != len(transcriptions):
        raise HeartMuLaError(
            f"Lyric Accuracy: got {len(references)} reference lyrics for {len(transcriptions)} "
            "transcriptions. Give one reference for all songs or exactly one per song."
        )
    return [lyric_accuracy(r, t) for r, t in zip(references, transcriptions)]
