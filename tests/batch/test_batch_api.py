"""batch_api=True: Cloudflare's asynchronous Batch API, against the fake's queue."""
import _thread
import threading

import pytest

import cfai_magic
from cfai_magic.batch import queue
from cfai_magic.batch.run import Job
from cfai_magic.errors import InputError
from cfai_magic.testing import Reply

LLAMA = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"     # async_queue, legacy answers
GEMMA = "@cf/google/gemma-4-26b-a4b-it"                # async_queue, chat.completion answers


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(queue.QueuedRun, "poll_first", 0.02)
    monkeypatch.setattr(queue.QueuedRun, "poll_max", 0.05)


def run_map(session, rows, **kw):
    kw.setdefault("model", LLAMA)
    return cfai_magic.map("Q {row}", rows, session=session, namespace={}, mode="final",
                          batch_api=True, **kw)


def queued(fake):
    return [r for r in fake.requests if r.query.get("queueRequest") == "true"]


@pytest.mark.parametrize("model", [LLAMA, GEMMA])
def test_rows_are_submitted_polled_and_mapped_back(session, fake, model):
    out = run_map(session, [f"r{i}" for i in range(7)], model=model)
    assert out == [f"Echo: Q r{i}" for i in range(7)]
    [submit, *polls] = queued(fake)
    items = submit.body["requests"]
    assert [i["external_reference"] for i in items] == [f"row-{i}" for i in range(7)]
    assert all("stream" not in i for i in items) and items[0]["prompt"] == "Q r0"
    assert [p.body for p in polls] == [{"request_id": "fake-batch-1"}] * 3   # queued, running, done
    assert not [r for r in fake.requests if r.kind == "run" and "queueRequest" not in r.query]
    stats = cfai_magic.batch.last.stats
    assert stats.answered == 7 and stats.tokens > 0


def test_big_jobs_go_in_requests_under_the_size_limit(session, fake, monkeypatch):
    monkeypatch.setattr(queue, "MAX_BYTES", 400)
    out = run_map(session, [f"row number {i}" for i in range(20)])
    assert out == [f"Echo: Q row number {i}" for i in range(20)]
    submits = [r for r in queued(fake) if "requests" in r.body]
    assert len(submits) > 1 and sum(len(s.body["requests"]) for s in submits) == 20
    assert len(fake.jobs) == len(submits)


def test_a_row_the_queue_could_not_answer_is_a_row_error(session, fake):
    fake.enqueue("one", Reply(status=400, code=5004, message="Invalid input"), "three")
    out = run_map(session, ["a", "b", "c"])
    assert out == ["one", None, "three"]
    errors = cfai_magic.batch.last.errors
    assert list(errors["row"]) == [1] and "could not answer this row: Invalid input" \
        in errors["error"][0]


def test_answers_map_back_by_reference_whatever_their_order(session):
    class Store(dict):
        def put(self, k, v):
            self[k] = v
    run = queue.QueuedRun(session, store=Store(), take=str, total=3)
    run.client = session.client()
    run.spec = session.resolve(LLAMA)
    from cfai_magic import turn
    from cfai_magic.parsing import Parsed
    jobs = {}
    for i in range(3):
        prepared = turn.prepare(session, turn.Ask(run.spec, Parsed(text=f"q{i}"), once=True))
        jobs[f"row-{i}"] = Job(i, f"k{i}", prepared)
    responses = [{"id": 2, "success": True, "external_reference": "row-2",
                  "result": {"response": "two"}},
                 {"id": 0, "success": True, "external_reference": "row-0",
                  "result": {"response": "zero"}}]
    run._collect(dict(jobs), responses)
    assert run.values == {2: "two", 0: "zero"}
    assert "left this row out" in run.errors[1]


def test_an_interrupt_while_polling_then_the_same_call_polls_again(session, fake, interruptible):
    fake.queue_polls = 10_000                  # never done, until we say so
    polled = threading.Event()
    original = fake._queued

    def watch(request):
        result = original(request)
        if "request_id" in request.body:
            polled.set()
        return result
    fake._queued = watch

    def interrupt():
        if polled.wait(120):
            _thread.interrupt_main()
        else:                                  # never polled: end the batch, fail below
            fake.queue_polls = 0
    threading.Thread(target=interrupt, daemon=True).start()
    out = run_map(session, ["a", "b"])
    assert out == [None, None] and cfai_magic.batch.last.interrupted
    fake.queue_polls = 0
    again = run_map(session, ["a", "b"])
    assert again == ["Echo: Q a", "Echo: Q b"]
    assert len(fake.jobs) == 1                 # the rows were not submitted twice


def test_a_model_without_the_batch_api_is_refused(session, fake):
    with pytest.raises(InputError, match="does not take the Batch API"):
        run_map(session, ["a"], model="llama3")
    assert queued(fake) == []


def test_chunks_respect_the_limit():
    items = [{"prompt": "x" * 100} for _ in range(10)]
    groups = queue.chunks(items, limit=350)
    assert [len(g) for g in groups] == [3, 3, 3, 1]
    assert sorted(i for g in groups for i in g) == list(range(10))


def test_request_ids_from_the_server_are_checked():
    assert queue.request_id("768f15b7-4fd6-4498-906e-ad94ffc7f8d2")
    for bad in ("../x", "", None, "a b", "x" * 200):
        with pytest.raises(Exception, match="request_id"):
            queue.request_id(bad)
