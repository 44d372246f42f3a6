"""A batch's progress: tqdm's bar (ipywidgets in Jupyter, text in a terminal) with rows done,
failed, rows/s, tokens, cost and time left, and one summary line at the end.

In ``final`` display mode (notebooks replayed under nbval) there is no live bar, only the
summary, and a replayed batch's summary has no timings, so it reads the same on every run.
"""
from __future__ import annotations

import sys

from ..usage import money


class Progress:
    def __init__(self, total: int, before: int, mode: str):
        self.bar = None
        if mode == "final" or total == 0:
            return
        if mode == "rich":
            from tqdm.notebook import tqdm
        else:
            from tqdm import tqdm
        self.bar = tqdm(total=total, initial=before, unit="row", desc="cfai map",
                        file=sys.stdout, dynamic_ncols=True)

    def show(self, stats) -> None:
        bar = self.bar
        if bar is None:
            return
        bar.n = stats.done
        bar.set_postfix_str(postfix(stats), refresh=False)
        bar.refresh()

    def close(self, stats, ok: bool) -> None:
        if self.bar is None:
            return
        self.show(stats)
        if hasattr(self.bar, "container") and not ok:
            self.bar.colour = "#d9534f"          # the notebook bar turns red
        self.bar.close()


def postfix(stats) -> str:
    bits = [stats.state] if stats.state else []
    if stats.pace:                       # tqdm's own time left learns the rate only later
        left = stats.time_left() or 0.0
        bits.append(f"{stats.pace}: ≥ {_duration(left)} left")
    bits += [f"{stats.failed} failed", f"{stats.tokens:,} tokens"]
    if stats.priced:
        bits.append(money(stats.usd, stats.estimated))
    return " · ".join(bits)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def summary(stats, *, replayed: bool, stopped=None, interrupted: bool = False) -> str:
    """One line: what was answered, what failed, tokens, cost, time; and what to do next."""
    missing = stats.total - stats.done
    parts = [f"{stats.total:,} rows", f"{stats.before + stats.answered:,} answered"]
    if stats.before:
        parts[-1] += f" ({stats.before:,} kept from before)"
    parts.append(f"{stats.failed:,} failed")
    if missing:
        parts.append(f"{missing:,} not sent")
    parts.append(f"{stats.tokens:,} tokens")
    if stats.priced:
        parts.append(money(stats.usd, stats.estimated))
    if replayed:
        parts.append("replayed")
    else:
        if stats.pace:
            parts.append(stats.pace)
        seconds = stats.elapsed()
        rate = stats.answered / seconds if seconds > 0 else 0.0
        parts.append(f"{seconds:.1f} s ({rate:.1f} rows/s)")
    line = "cfai map: " + " · ".join(parts)
    if stats.failed:
        line += "\nThe failed rows: _cfai_batch.errors (one line each)."
    if stopped is not None:
        line += (f"\nStopped: {stopped}\nThe answered rows are kept: run the same call again "
                 f"later to send only the {missing:,} others.")
    elif interrupted:
        line += (f"\nInterrupted: the answered rows are kept; run the same call again to send "
                 f"only the {missing:,} others.")
    return line
