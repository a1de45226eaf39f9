"""Stand-in for the progress bar of ``comfy.utils``, throttled as in ComfyUI 0.28 and later.

The hook hears the first update, the last one (value reaching the total) and any update carrying a
preview at once; others only when 100 ms have passed and the value moved by 0.5 % of the total
since the last one it heard. So a node cannot count on one hook call per step, as on 0.3.64.
"""

import time

PROGRESS_BAR_HOOK = None
PROGRESS_THROTTLE_MIN_INTERVAL = 0.1  # seconds between two throttled updates
PROGRESS_THROTTLE_MIN_PERCENT = 0.5  # % of the total a throttled update must have moved


def set_progress_bar_global_hook(function):
    global PROGRESS_BAR_HOOK
    PROGRESS_BAR_HOOK = function


class ProgressBar:
    def __init__(self, total, node_id=None):
        self.total = total
        self.current = 0
        self.hook = PROGRESS_BAR_HOOK
        self.node_id = node_id
        self._sent_at = 0.0
        self._sent_value = None

    def update_absolute(self, value, total=None, preview=None):
        if total is not None:
            self.total = total
        if value > self.total:
            value = self.total
        self.current = value
        if self.hook is None:
            return
        now = time.perf_counter()
        if not (preview is not None or self._sent_value is None or value >= self.total or self._due(value, now)):
            return
        self.hook(self.current, self.total, preview, node_id=self.node_id)
        self._sent_at, self._sent_value = now, value

    def _due(self, value, now) -> bool:
        moved = 100.0 * (value - max(0, self._sent_value)) / self.total if self.total > 0 else 100.0
        return now - self._sent_at >= PROGRESS_THROTTLE_MIN_INTERVAL and moved >= PROGRESS_THROTTLE_MIN_PERCENT

    def update(self, value):
        self.update_absolute(self.current + value)
