"""The renderer's pacing and what a streaming update shows, with a clock of our own."""
from cfai_magic.client.answer import Answer
from cfai_magic.client.events import Text
from cfai_magic.render import LIVE_LIMIT, Meter, live_text


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_slow_update_does_not_make_the_next_one_come_sooner():
    clock = Clock()
    meter = Meter(20, clock=clock)
    clock.now = 0.06
    assert meter.tick(10)
    clock.now = 0.50                   # that update took 440 ms
    meter.sent(100)
    clock.now = 0.51
    assert not meter.tick(20)          # before: due at once, and again, and again
    clock.now = 0.56
    assert meter.tick(30)


def test_updates_stay_within_a_byte_budget():
    clock = Clock()
    meter = Meter(20, clock=clock, budget=4, slack=1000)
    meter.sent(5000)
    clock.now = 1.0
    assert not meter.tick(received=900)       # 5000 > 4 * 900 + 1000
    assert meter.tick(received=1000)


def test_a_long_answer_streams_as_its_tail():
    answer = Answer("m", {})
    for i in range(2000):
        answer.take(Text(f"line {i} " + "x" * 60 + "\n"))
    view = live_text(answer)
    assert answer.size > LIVE_LIMIT and len(view) < 20_000
    assert view.startswith("*… ") and view.endswith("line 1999 " + "x" * 60 + "\n")
    assert "\nline " in view and view.split("\n\n", 1)[1].startswith("line ")   # whole lines
    short = Answer("m", {})
    short.take(Text("short"))
    assert live_text(short) == "short"
