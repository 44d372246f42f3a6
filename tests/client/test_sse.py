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


STREAMS = [  # shapes a server may send, beyond one "data: ..." line an event
    b'data: {"response":"a"}\n\ndata: {"response":"b"}\n\n',
    b'event: error\ndata: {"message":"x"}\n\n',
    b': keep-alive\ndata: {"response":"a"}\n\n',
    b'data: line one\ndata: line two\n\n',
    b'id: 7\nretry: 100\ndata: x\n\n',
    b'data:no-space\n\ndata:  two spaces\n\n',
    b'data: \n\ndata\n\n',
    b'\n\n\ndata: a\n\n\n\n\ndata: b\n\n',
    b'data: a\r\n\r\ndata: b\r\n\r\n',
    b'data: a\n\ndata: b\r\rdata: c\n\n',
    b'data: a\rdata: b\r\r',
    b'field: unknown\ndata: a\n\n',
    b'data: unterminated at the end',
    b'data: a\n\nevent: done\n\ndata: [DONE]\n\n',
]


def seen(events):
    return [(e.event, e.data, e.id, e.retry) for e in events]


@pytest.mark.parametrize("stream", STREAMS)
def test_the_reader_gives_what_sseclient_gives_cut_anywhere(stream):
    """The fast path is a shortcut, not another parser: sseclient-py itself is the reference,
    for every way the network may cut the bytes into two reads or into single bytes."""
    import sseclient
    expected = seen(sseclient.SSEClient(Pieces([stream])).events())
    assert expected                      # every stream above has at least one event
    cuts = [[stream[:i], stream[i:]] for i in range(1, len(stream))]
    for pieces in [[stream], [stream[i:i + 1] for i in range(len(stream))], *cuts]:
        assert seen(_sse.Reader(Pieces(pieces)).events()) == expected, pieces
