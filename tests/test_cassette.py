"""Cassettes: record through the client, replay with no network and no credentials."""
import json

import pytest

from cfai_magic import errors
from cfai_magic.cassette import REPLAY_URL, Cassette, entries
from cfai_magic.client import WorkersAI
from cfai_magic.testing import Reply

MESSAGES = [{"role": "user", "content": "What is the origin of the phrase Hello, World"}]


def replay_client(path, mode="replay"):
    return WorkersAI("cassette", "cassette", base_url=REPLAY_URL, cassette=Cassette(path, mode))


def test_record_then_replay_offline(fake_workers_ai, tmp_path):
    path = tmp_path / "c.json"
    fake_workers_ai.enqueue(Reply(chunks=["It ", "began ", "in ", "1972."]), "A story.")
    rec = fake_workers_ai.client(cassette=Cassette(path, "record"))
    stream = rec.stream("llama2-int8", messages=MESSAGES, seed=1, max_tokens=64)
    assert list(stream) == ["It ", "began ", "in ", "1972."]
    assert rec.run("mistral", prompt="Tell me a story", temperature=0).text == "A story."
    text = path.read_text()
    assert fake_workers_ai.token not in text and fake_workers_ai.account_id not in text
    lines = text.splitlines()                     # a journal: a header, then one line each
    assert json.loads(lines[0])["cfai_cassette"] == 2 and len(lines) == 3
    assert [json.loads(x) for x in lines[1:]] == entries(path)
    first = entries(path)[0]
    assert first["request"] == {"backend": "fake", "model": "@cf/meta/llama-2-7b-chat-int8",
                                "body": {"max_tokens": 64, "messages": MESSAGES, "seed": 1}}
    assert first["response"]["chunks"] == ["It ", "began ", "in ", "1972."]

    fake_workers_ai.stop()                       # no server, no real credentials
    offline = replay_client(path)
    replayed = offline.stream("llama2-int8", messages=MESSAGES, seed=1, max_tokens=64)
    assert list(replayed) == ["It ", "began ", "in ", "1972."]
    assert replayed.usage == first["response"]["usage"] and replayed.backend == "fake"
    assert replayed.replayed
    # recorded as a stream, asked for whole: same text
    assert offline.run("llama2-int8", messages=MESSAGES, seed=1, max_tokens=64).text == \
        "It began in 1972."
    assert offline.run("mistral", prompt="Tell me a story", temperature=0).text == "A story."


def test_a_miss_in_replay_is_one_line(tmp_path):
    path = tmp_path / "c.json"
    Cassette(path, "record")
    client = replay_client(path)
    with pytest.raises(errors.CassetteMiss) as info:
        client.run("llama2", prompt="Explain the difference between lists and tuples in Python "
                                    "please")
    text = str(info.value)
    assert text.startswith("No recording in c.json for @cf/meta/llama-2-7b-chat-fp16: "
                           "'Explain the difference between lists and tuples in …'")
    assert "\n" not in text
    with pytest.raises(errors.CassetteMiss):     # parameters are part of the match
        client.run("llama2", prompt="x", seed=1)


def test_auto_replays_what_it_has_and_records_the_rest(fake_workers_ai, tmp_path):
    path = tmp_path / "c.json"
    rec = fake_workers_ai.client(cassette=Cassette(path, "record"))
    rec.run("llama2", prompt="one")
    fake_workers_ai.reset()
    auto = fake_workers_ai.client(cassette=Cassette(path, "auto"))
    assert auto.run("llama2", prompt="one").text == "Echo: one"
    assert auto.run("llama2", prompt="two").text == "Echo: two"
    assert [r.body["prompt"] for r in fake_workers_ai.requests] == ["two"]
    assert len(entries(path)) == 2


def test_identical_requests_replay_in_order_then_the_last(fake_workers_ai, tmp_path):
    path = tmp_path / "c.json"
    fake_workers_ai.enqueue("first answer", "second answer")
    rec = fake_workers_ai.client(cassette=Cassette(path, "record"))
    rec.run("llama2", prompt="same")
    rec.run("llama2", prompt="same")
    client = replay_client(path)
    assert [client.run("llama2", prompt="same").text for _ in range(3)] == \
        ["first answer", "second answer", "second answer"]


def test_models_search_in_replay_needs_no_network(tmp_path):
    path = tmp_path / "c.json"
    Cassette(path, "record")
    assert "@cf/meta/llama-2-7b-chat-fp16" in [m["name"] for m in replay_client(path).models()]


def test_bad_cassettes(tmp_path):
    with pytest.raises(errors.InputError, match="No cassette at"):
        Cassette(tmp_path / "missing.json", "replay")
    bad = tmp_path / "bad.json"
    for text in ("[]", "hello\n", '{"interactions": 3}'):
        bad.write_text(text)
        with pytest.raises(errors.InputError, match="is not a cfai cassette"):
            Cassette(bad, "replay")
    with pytest.raises(errors.InputError, match="Unknown cassette mode"):
        Cassette(bad, "rewind")


def test_new_recordings_hold_protocol_neutral_events(fake_workers_ai, tmp_path):
    """Recorded through /ai/run in the chat.completion dialect, replayed through the
    OpenAI-compatible protocol: the same events, and no wire format in the file."""
    path = tmp_path / "c.json"
    calls = [{"name": "lookup", "arguments": {"q": "cow"}}]
    fake_workers_ai.enqueue(Reply(text="A cow is a mammal.", reasoning="Okay, cows.",
                                  tool_calls=calls))
    rec = fake_workers_ai.client(cassette=Cassette(path, "record"))
    recorded = rec.stream("@cf/zai-org/glm-4.7-flash", messages=MESSAGES).consume()
    text = path.read_text()
    assert "chat.completion" not in text and "choices" not in text and "delta" not in text
    response = entries(path)[0]["response"]
    assert response["chunks"] == ["A ", "cow ", "is ", "a ", "mammal."]
    assert response["reasoning"] == ["Okay, ", "cows."]
    assert response["tool_calls"] == [{"name": "lookup", "arguments": {"q": "cow"},
                                       "id": "call_0"}]
    assert response["finish_reason"] == "tool_calls"

    fake_workers_ai.stop()
    for protocol in ("openai", "workers-ai"):
        offline = WorkersAI("cassette", "cassette", base_url=REPLAY_URL, protocol=protocol,
                            cassette=Cassette(path, "replay"))
        again = offline.stream("@cf/zai-org/glm-4.7-flash", messages=MESSAGES).consume()
        assert (again.parts, again.reasoning_parts, again.tool_calls, again.usage,
                again.finish_reason) == (recorded.parts, recorded.reasoning_parts,
                                         recorded.tool_calls, recorded.usage,
                                         recorded.finish_reason)
        assert again.replayed


@pytest.mark.parametrize("protocol", ["workers-ai", "openai"])
def test_cassettes_of_the_first_version_replay_exactly(protocol):
    """Every answer in cassettes recorded by the first version (before the protocol seam; two
    demo cassettes kept as they were then) comes back as exactly its recorded chunks, through
    either protocol."""
    from pathlib import Path
    root = Path(__file__).resolve().parent / "data"
    n = 0
    for path in sorted(root.glob("first-version-*.json")):
        cassette = Cassette(path, "replay")
        client = WorkersAI("cassette", "cassette", base_url=REPLAY_URL, protocol=protocol,
                           cassette=cassette)
        for entry in json.loads(path.read_text())["interactions"]:
            request = dict(entry["request"]["body"])
            answer = client.answer(entry["request"]["model"], request).consume()
            assert answer.parts == [c for c in entry["response"]["chunks"] if c]
            assert answer.usage == entry["response"]["usage"]
            n += 1
    assert n >= 7
