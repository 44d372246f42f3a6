"""One limiter for every thread that sends to an account: requests spread at ``per_minute``,
and a 429 pauses them all for its Retry-After (not only the thread that got it). Each slot
follows the one planned before it, not the moment a thread woke up to take it, so late
wake-ups do not add up (they cost 5% of the rate when they did); a limiter left idle for
more than one interval starts afresh instead of letting a burst through."""
from __future__ import annotations

import threading
import time


class Limiter:
    def __init__(self, per_minute: float | None, clock=time.monotonic, sleep=time.sleep):
        self.per_minute = per_minute
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._next = 0.0             # when the next request may go
        self._paused_until = 0.0
        self.sent = 0
        self.first = None            # when the first request went (for the achieved rate)
        self.last = None

    def __repr__(self) -> str:
        return f"Limiter(per_minute={self.per_minute})"

    def wait(self, cancel: threading.Event | None = None) -> None:
        """Block until this thread may send; returns early when ``cancel`` is set."""
        while True:
            with self._lock:
                now = self._clock()
                at = max(self._next, self._paused_until)
                if at <= now:
                    planned = at if now - at < self.interval else now
                    self._next = planned + self.interval
                    self.sent += 1
                    self.first = now if self.first is None else self.first
                    self.last = now
                    return
            if cancel is None:
                self._sleep(at - now)
            elif cancel.wait(at - now):
                return

    def pause(self, seconds: float) -> None:
        """Nobody sends for ``seconds`` from now."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def rate(self) -> float | None:
        """The achieved rate, requests a minute, from the first to the last request."""
        if not self.first or self.sent < 2 or self.last <= self.first:
            return None
        return (self.sent - 1) * 60.0 / (self.last - self.first)
