"""The run's one progress bar: songs and songs/hour on a terminal, nothing when output is redirected."""

import io

from heartmula_core.batch.progress import RunProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_counts_songs_and_rate_on_a_terminal():
    stream = Terminal()
    bar = RunProgress(5, stream=stream)
    bar.advance(2)
    bar.advance(3)
    bar.close()
    text = stream.getvalue()
    assert "5/5" in text and "songs/h" in text and "song" in text


def test_bar_is_silent_when_not_a_terminal_but_messages_still_print():
    stream = io.StringIO()
    bar = RunProgress(3, stream=stream)
    bar.advance(1)
    bar.say("batch: job 'a' failed, retrying once")
    bar.close()
    assert stream.getvalue() == "batch: job 'a' failed, retrying once\n"
