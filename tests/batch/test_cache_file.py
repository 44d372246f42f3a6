"""The cache= file: damaged by a crash or by hand, shared, or on a disk that fills up."""
import json
import subprocess
import sys
import textwrap

import cfai_magic
from cfai_magic.session import Session


def run_map(session, rows, **kw):
    return cfai_magic.map("{row}", rows, session=session, namespace={}, model="llama3",
                          mode="final", **kw)


def sent(fake):
    return [r.input_text for r in fake.requests if r.kind == "run"]


def test_a_damaged_cache_is_read_around_and_reported(fake, tmp_path, capsys):
    path = tmp_path / "answers.jsonl"
    first = Session()
    run_map(first, ["a", "b", "c", "d"], cache=path)
    first.answers.forget_file()
    lines = path.read_bytes().splitlines()
    order = [json.loads(x)["text"] for x in lines]
    b, c, d = (lines[order.index(f"Echo: {x}")] for x in "bcd")
    broken = json.loads(c)
    broken["text"] = 5                                  # a value of the wrong type
    path.write_bytes(b"\n".join([lines[order.index("Echo: a")], b.replace(b"Echo", b"\xffcho"),
                                 json.dumps(broken).encode(), d[:20]]))  # d cut by a crash
    capsys.readouterr()
    fake.reset()
    second = Session()
    out = run_map(second, ["a", "b", "c", "d"], cache=path)
    printed = capsys.readouterr().out.splitlines()
    assert out == ["Echo: a", "Echo: b", "Echo: c", "Echo: d"]      # never 5, never garbage
    assert sorted(sent(fake)) == ["b", "c", "d"]
    assert printed[0] == ("Skipped 3 damaged lines of answers.jsonl (line 2: not UTF-8 text "
                          f"(byte {b.index(b'Echo') + 1}); and 2 more); those rows are sent "
                          "again.")
    second.answers.forget_file()
    fake.reset()                                        # what was appended is whole
    third = Session()
    assert run_map(third, ["a", "b", "c", "d"], cache=path) == out and sent(fake) == []
    third.answers.forget_file()


FULL_DISK = """
import resource, signal, sys
import cfai_magic
from cfai_magic.session import Session
from cfai_magic.testing import FakeWorkersAI
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # a write past the limit fails with EFBIG
with FakeWorkersAI() as fake:
    import os
    os.environ.update(fake.env())
    s = Session()
    path = sys.argv[1]
    open(path, "w").close()
    resource.setrlimit(resource.RLIMIT_FSIZE, (400, 400))    # room for a few answers
    out = cfai_magic.map("{row}", [f"q{i}" for i in range(25)], session=s, namespace={},
                         model="llama3", mode="final", cache=path, concurrency=5)
    print("answered", sum(v is not None for v in out))
    errors = cfai_magic.batch.last.errors
    print("errors", len(errors), errors.iloc[-1]["error"])
"""


def test_a_full_disk_keeps_the_batch_answering(tmp_path):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(FULL_DISK),
                             str(tmp_path / "answers.jsonl")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "Exception in thread" not in result.stderr
    lines = result.stdout.splitlines()
    failure = [x for x in lines if x.startswith("Cannot write the batch cache")]
    assert failure == ["Cannot write the batch cache answers.jsonl (No space left on device): answers "
                       "from here on are kept in this kernel only"]
    assert "answered 25" in lines
    assert lines[-1] == "errors 1 " + failure[0]
    kept = (tmp_path / "answers.jsonl").read_bytes()
    assert 0 < len(kept) <= 400 and kept.endswith(b"\n")         # whole lines only
    assert all(json.loads(x)["text"].startswith("Echo: q") for x in kept.splitlines())
