"""A chunked HTTP body read in the blocks the socket gives.

urllib3 reads a chunked body one HTTP chunk at a time (a line for the size, the data, the
CRLF): three reads and a generator step for every chunk, which is most of the client's time
when a server writes each token as its own chunk. Here the socket's buffer is read with
``read1`` (what has arrived, one system call at most) and every complete chunk in it is joined
into one block, so the SSE parser downstream gets large blocks and nothing waits for more
than what has arrived. At the last chunk the response is closed as urllib3 closes it, and the
connection goes back to the pool.
"""
from __future__ import annotations

import socket
from collections.abc import Iterator

from urllib3.exceptions import ProtocolError

BLOCK = 65536
MAX_LINE = 65536                 # a chunk-size or trailer line longer than this is a fault
QUICKACK = getattr(socket, "TCP_QUICKACK", None)       # Linux only
SIZE, CRLF, TRAILERS = -1, -2, -3   # what is due next, when no chunk data is (``left``)


def fast(raw) -> bool:
    """Whether ``raw`` (a urllib3 response) can be read here: chunked, not encoded, over
    http.client (anything else keeps urllib3's own reader)."""
    original = getattr(raw, "_original_response", None)
    encoding = (raw.headers.get("Content-Encoding") or "identity").strip().lower()
    return bool(getattr(raw, "chunked", False) and encoding == "identity"
                and original is not None and getattr(original, "fp", None) is not None
                and hasattr(original.fp, "read1") and getattr(raw, "chunk_left", 1) is None)


def _acker(raw):
    """A function that asks the kernel to acknowledge at once what has arrived. A server that
    writes small pieces without TCP_NODELAY (Nagle's algorithm on) holds each piece until the
    last is acknowledged, and on a reused connection Linux delays that acknowledgement by
    about 40 ms: the first token of every answer came 40 ms late. TCP_QUICKACK is not sticky,
    so it is set before each read (one system call a block)."""
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if QUICKACK is None or sock is None:
        return lambda: None

    def ack() -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
        except OSError:
            pass
    return ack


def _size(line) -> int:
    """A chunk's size from its size line (bytes, CR included); chunk extensions dropped."""
    try:
        size = int(line, 16)                    # the common case: hex digits, then CR
    except ValueError:
        try:
            size = int(bytes(line).split(b";", 1)[0], 16)
        except ValueError:
            size = -1
    if size < 0:
        raise ProtocolError(f"Invalid chunk length in the response: {bytes(line[:20])!r}")
    return size


def blocks(raw) -> Iterator[bytes]:
    """The body's bytes, de-chunked, a block per read of the socket. A chunk that has arrived
    whole (the usual case) is taken in one step; one cut by the read is followed byte by
    byte of what arrives (``left``: its data still due, or what is due instead)."""
    original = raw._original_response
    fp = original.fp
    ack = _acker(raw)
    buf, pos, left = bytearray(), 0, SIZE
    while True:
        out = bytearray()
        while True:
            if left in (SIZE, TRAILERS):
                end = buf.find(b"\n", pos)
                if end < 0:
                    if len(buf) - pos > MAX_LINE:
                        raise ProtocolError("Response chunk size line exceeded maximum length")
                    break
                line, pos = buf[pos:end], end + 1
                if left == TRAILERS:                 # until a blank line
                    if not line.strip():
                        if out:
                            yield bytes(out)
                        _done(raw, original)
                        return
                    continue
                size = _size(line)
                if not size:
                    left = TRAILERS
                    continue
                stop = pos + size
                if stop + 2 <= len(buf):             # the chunk and its CRLF are here
                    if buf[stop:stop + 2] != b"\r\n":
                        raise ProtocolError("A chunk of the response did not end with CRLF")
                    out += buf[pos:stop]
                    pos = stop + 2
                    continue
                left = size
            if left > 0:
                take = min(left, len(buf) - pos)
                out += buf[pos:pos + take]
                pos, left = pos + take, left - take
                if left:
                    break
                left = CRLF
            if len(buf) - pos < 2:                   # left is CRLF: after the data
                break
            if buf[pos:pos + 2] != b"\r\n":
                raise ProtocolError("A chunk of the response did not end with CRLF")
            pos, left = pos + 2, SIZE
        if out:
            yield bytes(out)
        del buf[:pos]
        pos = 0
        ack()
        try:
            more = fp.read1(BLOCK)
        except ValueError:                  # closed by another thread (Answer.abort)
            raise ProtocolError("The connection was closed") from None
        if not more:
            raise ProtocolError("Response ended prematurely")
        buf += more


def _done(raw, original) -> None:
    """The whole body is read: close the http.client response and give the connection back,
    as urllib3 does at the end of its own reader."""
    original.close()
    raw.release_conn()
