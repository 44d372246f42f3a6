"""The limiter alone, on a clock of its own: its pace holds when threads wake late."""
import pytest

from cfai_magic.batch.pace import Limiter


class LateClock:
    """A clock whose sleeps end ``late`` seconds after they should, as a busy machine's do."""

    def __init__(self, late: float):
        self.now, self.late = 100.0, late

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + self.late


@pytest.mark.parametrize("late", [0.0, 0.005, 0.02])
def test_late_wake_ups_do_not_slow_the_pace(late):
    clock = LateClock(late)
    limiter = Limiter(1200, clock=clock, sleep=clock.sleep)      # one every 50 ms
    for _ in range(1200):
        limiter.wait()
    assert 0.99 * 1200 <= limiter.rate() <= 1200 * 1.0001


def test_it_never_goes_faster_than_its_rate():
    clock = LateClock(0.0)
    limiter = Limiter(600, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(50):
        limiter.wait()
        times.append(clock.now)
    assert min(b - a for a, b in zip(times, times[1:])) >= 0.1 - 1e-9


def test_an_idle_limiter_lets_no_burst_through():
    clock = LateClock(0.0)
    limiter = Limiter(600, clock=clock, sleep=clock.sleep)
    limiter.wait()
    clock.now += 10.0                          # nobody sent for ten seconds
    limiter.wait()
    start = clock.now
    limiter.wait()                             # the next one waits its full interval
    assert clock.now - start == pytest.approx(0.1)


def test_a_pause_holds_everyone_then_the_pace_resumes():
    clock = LateClock(0.0)
    limiter = Limiter(600, clock=clock, sleep=clock.sleep)
    limiter.wait()
    limiter.pause(5.0)
    start = clock.now
    limiter.wait()
    assert clock.now - start == pytest.approx(5.0)
