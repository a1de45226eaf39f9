"""SIGTERM and SIGHUP stop the command line as Ctrl-C does.

Process managers, containers, Ray and closed terminals stop a program with SIGTERM / SIGHUP, whose
default action ends the process on the spot: no ``finally`` runs, so temporary files stay behind
(a hidden ``.partial-*`` that made a rerun of ``quantize`` refuse its ``--out``). Here either signal
raises ``Terminated`` (a KeyboardInterrupt) where the program is, so every cleanup that runs for
Ctrl-C runs for them too. A second signal while cleaning up is ignored; a manager that will not
wait sends SIGKILL, whose leftovers the next run removes (heartmula_core/leftovers.py).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

SIGNALS = ("SIGTERM", "SIGHUP")


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (``signum``: the signal's number)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def stop_like_ctrl_c():
    """Within the block, SIGTERM / SIGHUP raise ``Terminated`` once (signals the process ignores,
    as under nohup, stay ignored); the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    raised = []

    def stop(signum, _frame):
        if not raised:
            raised.append(signum)
            raise Terminated(signum)

    for name in SIGNALS:
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
            previous[number] = signal.signal(number, stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
