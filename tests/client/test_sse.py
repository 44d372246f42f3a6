"""The event parser on its own, fed byte pieces as the network might cut them."""
import json

import pytest

from cfai_magic.client import _sse
from cfai_magic.errors import StreamError


class Pieces(list):
    def close(self):
        self.closed = True


def body(texts, crlf=False, usage=True, done=True):
    out = b"".join(b"data: " + json.dumps({"response": t}).encode() + b"\n\n" for t in texts)
    if usage:
        out += b'data: {"response":"","usage":{"total_tokens":3}}\n\n'
    if done:
        out += b"data: [DONE]\n\n"
    return out.replace(b"\n", b"\r\n") if crlf else out


TEXTS = ["Grüße", " ✓", " 日本", "語 🎉", ""]


@pytest.mark.parametrize("crlf", [False, True])
def test_every_cut_point(crlf):
    data = body(TEXTS, crlf=crlf)
    for cut in range(1, len(data)):
        got = [e.get("response") for e in _sse.events(Pieces([data[:cut], data[cut:]]))]
        assert got == TEXTS + [""], cut


def test_one_byte_at_a_time():
    data = body(TEXTS, crlf=True)
    got = list(_sse.events(Pieces([data[i:i + 1] for i in range(len(data))])))
    assert [e["response"] for e in got] == TEXTS + [""]
    assert got[-1]["usage"] == {"total_tokens": 3}


def test_error_event_raises():
    data = b'data: {"response":"a"}\n\ndata: {"errors":[{"code":3007,"message":"timed out"}]}\n\n'
    events = _sse.events(Pieces([data]))
    assert next(events)["response"] == "a"
    with pytest.raises(StreamError, match="timed out"):
        next(events)


def test_non_utf8_is_malformed():
    with pytest.raises(StreamError, match="Malformed"):
        list(_sse.events(Pieces([b'data: {"response":"\xff"}\n\n'])))


def test_end_without_done():
    with pytest.raises(StreamError, match="before"):
        list(_sse.events(Pieces([body(["a"], done=False)])))
