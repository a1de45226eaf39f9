"""Lyric accuracy on hand-made cases whose error rates are counted by hand."""

import pytest

from heartmula_core.errors import HeartMuLaError
from heartmula_core.listening.metrics import lyric_accuracy, lyric_accuracy_batch, normalise_lyrics


def test_section_tags_timestamps_punctuation_and_case_are_removed():
    text = "[Verse]\nHello, World!\n[Chorus 2]\n[00:12.50] Don't STOP—the   music..."
    assert normalise_lyrics(text) == "hello world dont stop the music"


def test_cjk_punctuation_is_removed():
    assert normalise_lyrics("[副歌]\n我爱你，中国！") == "我爱你 中国"


def test_perfect_transcription_scores_zero_despite_formatting():
    score = lyric_accuracy("[Verse]\nHello, world.\n[Chorus]\nSing along!", "hello world sing along")
    assert score.wer == 0.0 and score.cer == 0.0
    assert score.reference_words == 4


def test_known_word_and_character_errors():
    # reference: "the cat sat down" (4 words, 13 characters without spaces)
    # hypothesis: "the bat sat" -> 1 substitution + 1 deletion = 2 / 4 words;
    # characters "thecatsatdown" vs "thebatsat": 1 substitution (c->b) + 4 deletions (down) = 5 / 13
    score = lyric_accuracy("The cat sat down.", "the bat sat")
    assert score.wer == pytest.approx(2 / 4)
    assert score.cer == pytest.approx(5 / 13)


def test_chinese_line_uses_characters():
    # 8 reference characters, one substituted (天 -> 田) and one inserted (啊)
    score = lyric_accuracy("[Verse]\n今天天气很好，我们", "今天田气很好我们啊")
    assert score.cer == pytest.approx(2 / 8)
    assert score.reference_chars == 8
    # spaces the transcriber puts between characters do not count against it
    assert lyric_accuracy("今天天气很好", "今天 天气 很好").cer == 0.0


def test_empty_transcription_is_all_deletions():
    score = lyric_accuracy("one two three", "")
    assert score.wer == 1.0 and score.cer == 1.0


def test_empty_reference_is_a_clear_error():
    with pytest.raises(HeartMuLaError, match="reference lyrics are empty"):
        lyric_accuracy("[Verse]\n[Chorus]", "anything")


def test_batch_broadcasts_one_reference_and_checks_counts():
    scores = lyric_accuracy_batch(["a b c d"], ["a b c d", "a b", "x b c d"])
    assert [s.wer for s in scores] == [0.0, 0.5, 0.25]
    with pytest.raises(HeartMuLaError, match="2 reference lyrics for 3 transcriptions"):
        lyric_accuracy_batch(["a", "b"], ["a", "b", "c"])
