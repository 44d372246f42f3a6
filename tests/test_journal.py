"""Cassettes as append-only journals: shared by writers, large, damaged, or attacked with links."""
import json
import os
import threading

import pytest

from cfai_magic import errors
from cfai_magic.cassette import REPLAY_URL, Cassette, entries
from cfai_magic.client import WorkersAI


def recorder(fake, path, mode="auto"):
    return fake.client(cassette=Cassette(path, mode))


def offline(path):
    return WorkersAI("cassette", "cassette", base_url=REPLAY_URL,
                     cassette=Cassette(path, "replay"))


def test_recording_appends_and_never_rewrites(fake_workers_ai, tmp_path):
    path = tmp_path / "c.json"
    client = recorder(fake_workers_ai, path, "record")
    client.run("llama2", prompt="one")
    before, inode = path.read_bytes(), path.stat().st_ino
    for prompt in ("two", "three"):
        client.run("llama2", prompt=prompt)
    after = path.read_bytes()
    assert path.stat().st_ino == inode and after.startswith(before)     # appended, in place
    assert after.count(b"\n") == 4                 # the header and one line per answer
    assert [e["request"]["body"]["prompt"] for e in entries(path)] == ["one", "two", "three"]


def test_two_writers_lose_nothing_and_read_each_other(fake_workers_ai, tmp_path):
    """Two cassettes on one file (two open files, as two kernels have), eight threads."""
    path = tmp_path / "shared.json"
    a, b = recorder(fake_workers_ai, path), recorder(fake_workers_ai, path)

    def ask(client, who):
        for i in range(25):
            client.run("llama2", prompt=f"{who} {i}")
    threads = [threading.Thread(target=ask, args=(c, f"{n}-{w}"))
               for n, c in enumerate((a, b)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(entries(path)) == 200
    fake_workers_ai.reset()
    assert b.run("llama2", prompt="0-1 3").text == "Echo: 0-1 3"   # a's answer, read by b
    assert not fake_workers_ai.requests


def test_starting_afresh_does_not_drop_a_live_recorders_answers(fake_workers_ai, tmp_path):
    path = tmp_path / "c.json"
    first = recorder(fake_workers_ai, path, "record")
    first.run("llama2", prompt="one")
    second = recorder(fake_workers_ai, path, "record")      # another kernel starts afresh
    second.run("llama2", prompt="two")
    first.run("llama2", prompt="three")                     # puts its own answers back
    prompts = sorted(e["request"]["body"]["prompt"] for e in entries(path))
    assert prompts == ["one", "three", "two"]


def test_a_planted_link_is_refused(fake_workers_ai, tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "c.json"
    link.symlink_to(target)
    for mode in ("record", "auto"):
        with pytest.raises(errors.InputError, match="symbolic link") as info:
            recorder(fake_workers_ai, link, mode)
        assert "\n" not in str(info.value)
    assert target.read_text() == "keep me"
    # and a link swapped in after recording started: the answer stands, the target is kept
    path = tmp_path / "d.json"
    client = recorder(fake_workers_ai, path, "record")
    path.unlink()
    path.symlink_to(target)
    answer = client.run("llama2", prompt="x")
    assert answer.text == "Echo: x" and any("Not recorded" in n for n in answer.notes)
    assert target.read_text() == "keep me"


def test_a_cut_last_line_is_set_apart_and_reported(fake_workers_ai, tmp_path):
    path = tmp_path / "c.json"
    recorder(fake_workers_ai, path, "record").run("llama2", prompt="one")
    with path.open("ab") as f:
        f.write(b'{"request": {"model": "@cf/meta/llama-2-7b-chat-fp16", "bo')   # a crash
    auto = Cassette(path, "auto")
    assert auto.report() == ("Skipped 1 damaged entry of c.json (line 3: cut short (the file "
                             "was not fully written)); the others replay.")
    fake_workers_ai.client(cassette=auto).run("llama2", prompt="two")
    again = Cassette(path, "replay")
    assert [e["request"]["body"]["prompt"] for e in again.entries()] == ["one", "two"]
    assert len(again.problems) == 1 and "line 3: not JSON" in again.problems[0]


def test_damaged_lines_are_skipped_not_fatal(fake_workers_ai, tmp_path):
    path = tmp_path / "c.json"
    recorder(fake_workers_ai, path, "record").run("llama2", prompt="one")
    good = path.read_bytes().splitlines()[1]
    bad = [b"\xff\xfe not text", b'{"request": [], "response": {"chunks": []}}',
           json.dumps({"request": {"model": "m", "body": {}},
                       "response": {"chunks": ["a"], "reasoning": [1, 2]}}).encode(),
           json.dumps({"request": {"model": "m", "body": {}},
                       "response": {"chunks": "text"}}).encode(),
           json.dumps({"request": {"model": "m", "body": {}},
                       "response": {"chunks": ["a"], "usage": {"prompt_tokens": "x"}}}).encode()]
    path.write_bytes(b"\n".join([path.read_bytes().splitlines()[0], *bad, good]) + b"\n")
    cassette = Cassette(path, "replay")
    assert cassette.problems == [
        "line 2: not UTF-8 text (byte 1)",
        "line 3: request: input should be a valid dictionary or instance of Request",
        "line 4: response.reasoning.0: input should be a valid string (and 1 more)",
        "line 5: response.chunks: input should be a valid list",
        "line 6: response.usage.prompt_tokens: input should be a valid integer (and 1 more)"]
    fake_workers_ai.stop()
    assert offline(path).run("llama2", prompt="one").text == "Echo: one"


def test_a_first_version_cassette_grows_into_a_journal(fake_workers_ai, tmp_path):
    from pathlib import Path
    source = sorted((Path(__file__).parent / "data").glob("first-version-*.json"))[0]
    path = tmp_path / "old.json"
    path.write_bytes(source.read_bytes())
    old = entries(path)
    client = recorder(fake_workers_ai, path)
    first = old[0]["request"]
    assert client.answer(first["model"], dict(first["body"])).consume().parts == \
        [c for c in old[0]["response"]["chunks"] if c]
    client.run("llama2", prompt="new one")
    assert json.loads(path.read_text().splitlines()[0])["cfai_cassette"] == 2
    assert entries(path) == [*old, entries(path)[-1]] and len(entries(path)) == len(old) + 1
    assert oct(path.stat().st_mode & 0o777) == oct(source.stat().st_mode & 0o777)


def test_lookup_reads_the_file_once_not_per_request(fake_workers_ai, tmp_path, monkeypatch):
    path = tmp_path / "c.json"
    client = recorder(fake_workers_ai, path, "record")
    for i in range(30):
        client.run("llama2", prompt=f"q {i}")
    cassette = Cassette(path, "replay")
    reads = []
    real = os.pread
    monkeypatch.setattr(os, "pread", lambda *a: reads.append(a) or real(*a))
    replay = WorkersAI("cassette", "cassette", base_url=REPLAY_URL, cassette=cassette)
    for i in range(30):
        assert replay.run("llama2", prompt=f"q {i}").text == f"Echo: q {i}"
    assert reads == []                                     # hits come from the index
