"""cfai_magic.map against the fake server: order, pace, faults, resuming, shapes."""
import logging
import random
import threading

import pandas as pd
import pytest

import cfai_magic
from cfai_magic.errors import InputError
from cfai_magic.testing import Reply

MODEL = "llama3"                       # @cf/meta/llama-3.1-8b-instruct-fast: JSON mode


def run_map(session, template, rows, **kw):
    kw.setdefault("model", MODEL)
    kw.setdefault("mode", "final")
    return cfai_magic.map(template, rows, session=session, namespace={}, **kw)



def test_order_is_kept_under_random_latency(session, fake):
    rng = random.Random(7)
    fake.default = lambda req: Reply(text=f"A:{req.input_text}", delay=rng.uniform(0, 0.05))
    rows = [f"q{i}" for i in range(60)]
    out = run_map(session, "Q {row}", rows, concurrency=12)
    assert out == [f"A:Q q{i}" for i in range(60)]
    arrival = [r.input_text for r in fake.asked]
    assert arrival != sorted(arrival, key=lambda t: int(t[3:]))   # they did overlap


def test_a_429_pauses_every_worker(session, fake):
    """One 429 (Retry-After 0.4 s) stops all 8 threads, not only the one that got it."""
    first = threading.Event()

    def answer(req):
        if not first.is_set():
            first.set()
            return Reply(status=429, code=3040, retry_after=0.4)
        return Reply(text="ok", delay=0.05)
    fake.default = answer
    out = run_map(session, "Q {row}", [str(i) for i in range(24)], concurrency=8)
    assert out == ["ok"] * 24
    times = [r.time for r in fake.asked]
    refused = times[0]
    later = [t for t in times[8:]]
    assert min(later) - refused >= 0.35, [round(t - refused, 3) for t in times]


def test_a_429_storm_answers_every_row(session, fake):
    rng = random.Random(3)
    lock = threading.Lock()

    def answer(req):
        with lock:
            busy = rng.random() < 0.4
        return Reply(status=429, code=3040, retry_after=0.01) if busy else \
            Reply(text=f"A:{req.input_text}")
    fake.default = answer
    out = run_map(session, "{row}", [f"r{i}" for i in range(80)], concurrency=8)
    assert out == [f"A:r{i}" for i in range(80)]
    refused = [r for r in fake.asked]
    assert len(refused) > 100                  # the storm happened, and was ridden out


def test_3036_stops_the_batch_and_keeps_the_answered_rows(session, fake, capsys):
    fake.enqueue(*[f"a{i}" for i in range(5)])
    fake.default = lambda req: Reply(status=429, code=3036,
                                     message="You have used up your daily free allocation")
    out = run_map(session, "{row}", [f"r{i}" for i in range(20)], concurrency=1)
    assert out[:5] == [f"a{i}" for i in range(5)] and out[5:] == [None] * 15
    assert len(fake.asked) == 6                # nothing sent after the 3036
    printed = capsys.readouterr().out
    assert "5 answered" in printed and "15 not sent" in printed
    assert "Stopped: " in printed and "code 3036" in printed
    fake.reset()
    fake.default = lambda req: Reply(text="later")
    again = run_map(session, "{row}", [f"r{i}" for i in range(20)], concurrency=1)
    assert again == [f"a{i}" for i in range(5)] + ["later"] * 15
    assert len(fake.asked) == 15               # only the rows without an answer


def test_a_failed_row_keeps_its_error_and_the_others_their_answers(session, fake, capsys):
    fake.default = lambda req: (Reply(status=400, code=5004, message="Invalid input")
                                if req.input_text == "r3" else Reply(text="fine"))
    out = run_map(session, "{row}", [f"r{i}" for i in range(6)])
    assert out == ["fine"] * 3 + [None] + ["fine"] * 2
    errors = cfai_magic.batch.last.errors
    assert list(errors["row"]) == [3] and "Invalid input" in errors["error"][0]
    assert "\n" not in errors["error"][0]
    assert "1 failed" in capsys.readouterr().out


def test_a_row_too_long_for_the_model_fails_alone(session, fake):
    rows = ["short", "word " * 200_000, "short too"]
    out = run_map(session, "{row}", rows, model="llama2")
    assert out[0] and out[2] and out[1] is None
    assert len(fake.asked) == 2


def test_sixteen_threads_share_one_pool_without_warnings(session, fake, caplog):
    fake.default = lambda req: Reply(text="ok", delay=0.02)
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        run_map(session, "{row}", [str(i) for i in range(64)], concurrency=16)
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
    assert fake.connections <= 17              # 16 workers, and the model list


def test_rows_as_dicts_series_and_dataframe(session, fake):
    assert run_map(session, "{name}: {age}", [{"name": "a", "age": 1}, {"name": "b", "age": 2}]) \
        == ["Echo: a: 1", "Echo: b: 2"]
    series = pd.Series(["x", "y"], index=[10, 20], name="word")
    out = run_map(session, "say {word}", series)
    assert isinstance(out, pd.Series) and list(out.index) == [10, 20]
    assert list(out) == ["Echo: say x", "Echo: say y"]
    df = pd.DataFrame({"review": ["great", "awful"], "stars": [5, 1]}, index=["a", "b"])
    df["summary"] = run_map(session, "Summarise ({stars}): {review}", df)
    assert list(df["summary"]) == ["Echo: Summarise (5): great", "Echo: Summarise (1): awful"]


def test_a_template_without_row_fields_is_refused(session, fake):
    with pytest.raises(InputError, match="none of the rows' fields"):
        run_map(session, "Summarise this", ["a", "b"])
    assert fake.asked == []


def test_notebook_variables_fill_the_rest(session, fake):
    out = cfai_magic.map("{tone}: {row}", ["a"], session=session, model=MODEL, mode="final",
                         namespace={"tone": "Briefly"})
    assert out == ["Echo: Briefly: a"]


def test_the_limiter_spaces_requests_at_its_rate(session, fake):
    run_map(session, "{row}", [str(i) for i in range(7)], concurrency=4, rate=600)
    times = sorted(r.time for r in fake.asked)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.09, gaps             # 600 a minute: one every 0.1 s, never sooner


def test_cache_file_keeps_answers_for_a_new_session(fake, tmp_path):
    from cfai_magic.session import Session
    path = tmp_path / "answers.jsonl"
    first = Session()
    run_map(first, "{row}", ["a", "b", "c"], cache=path)
    first.answers.forget_file()
    assert fake.token not in path.read_text()
    fake.reset()
    second = Session()
    assert run_map(second, "{row}", ["a", "b", "c", "d"], cache=path) == \
        ["Echo: a", "Echo: b", "Echo: c", "Echo: d"]
    assert [r.input_text for r in fake.asked] == ["d"]
    second.answers.forget_file()


def test_an_unwritable_cache_is_one_line_before_anything_is_sent(session, fake, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match="Cannot use .* as the batch cache"):
        run_map(session, "{row}", ["a"], cache=blocker / "answers.jsonl")
    assert fake.asked == []


def test_a_token_the_server_echoes_is_not_in_the_errors(session, fake):
    fake.default = lambda req: Reply(status=400, code=5004,
                                     message=f"bad request from {fake.token}")
    run_map(session, "{row}", ["a"])
    errors = cfai_magic.batch.last.errors
    assert fake.token not in errors.to_string() and "********" in errors["error"][0]


def test_the_same_fault_on_the_first_rows_stops_the_batch(session, fake, capsys):
    fake.default = lambda req: Reply(status=500, message="engine refuses response_format")
    session.settings.max_retries = 0
    out = run_map(session, "{row}", [f"r{i}" for i in range(50)], concurrency=1)
    assert out == [None] * 50
    assert len(fake.asked) == 5
    printed = capsys.readouterr().out
    assert "Stopped: the first 5 rows sent all failed" in printed and "45 not sent" in printed


def test_a_big_job_on_a_batch_model_is_offered_the_batch_api(session, fake, capsys,
                                                              monkeypatch):
    import cfai_magic.batch as batch
    monkeypatch.setattr(batch, "BIG_JOB", 10)
    run_map(session, "{row}", [f"r{i}" for i in range(12)], model="gemma4")
    assert "takes Cloudflare's Batch API" in capsys.readouterr().out
    run_map(session, "{row}", [f"s{i}" for i in range(12)], model="gemma4")
    assert "Batch API" not in capsys.readouterr().out        # said once
