"""A Workers AI event stream as parsed JSON events, read by sseclient-py."""
from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import chain

import requests
import sseclient
import urllib3

from ..errors import StreamError
from . import _chunked

READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)
BOM = b"\xef\xbb\xbf"
DRAIN_SECONDS = 1.0      # after [DONE], how long to wait for the body's end
MAX_EVENT = 4 * 1024 * 1024      # bytes in one event: more is not a token, it is a fault
_ENDS = (b"\n\n", b"\r\r", b"\r\n\r\n")
_decode = json.JSONDecoder().decode         # json.loads less its checks for bytes


def stalled(exc: BaseException) -> bool:
    """Whether a read failed because nothing came within the read timeout."""
    timeouts = (TimeoutError, requests.Timeout, urllib3.exceptions.TimeoutError)
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, timeouts) or "timed out" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__ or (seen.args[0] if seen.args and
                                                      isinstance(seen.args[0], BaseException)
                                                      else None)
    return False


def without_bom(chunks):
    """The byte chunks less a leading UTF-8 BOM (which the SSE format says to drop), even when
    it arrives split across reads."""
    head = b""
    for chunk in chunks:
        if head is not None:
            head += chunk
            if len(head) < len(BOM) and BOM.startswith(head):
                continue
            chunk, head = head[len(BOM):] if head.startswith(BOM) else head, None
        yield chunk
    if head:
        yield head


def capped(chunks, limit: int = MAX_EVENT):
    """The chunks, or :class:`StreamError` once one event (bytes since the last blank line)
    passes ``limit``: sseclient joins an event's pieces one by one, so a huge one would take
    time growing with its square. Counted in one pass, a separator split across reads too."""
    since, tail = 0, b""
    for chunk in chunks:
        seen = tail + chunk
        end = max(seen.rfind(sep) + len(sep) if sep in seen else -1 for sep in _ENDS)
        since = len(seen) - end if end >= 0 else since + len(chunk)
        if since > limit:
            raise StreamError(f"One event of the stream is over {limit // (1024 * 1024)} MiB; "
                              "the answer was stopped there")
        tail = seen[-3:]
        yield chunk


class Body:
    """The response body as the iterable of byte chunks (with ``close``) that SSEClient reads.

    A chunked body is read in the blocks the socket gives (``_chunked``), or, when it is
    encoded, one HTTP chunk at a time by urllib3; any other body with ``read1``, so a stream
    without chunked framing is not held back until it ends. Encoded bodies (gzip, deflate)
    are decoded as the client's Accept-Encoding allows.
    """

    def __init__(self, response: requests.Response):
        self.response = response
        self._chunks: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        if self._chunks is None:
            self._chunks = capped(without_bom(self._read()))
        return self._chunks

    def _read(self) -> Iterator[bytes]:
        raw = self.response.raw
        if _chunked.fast(raw):                      # a block per socket read, not per chunk
            return _chunked.blocks(raw)
        if getattr(raw, "chunked", False) and hasattr(raw, "stream"):
            return raw.stream(None, decode_content=True)
        if not hasattr(raw, "read1"):
            return self.response.iter_content(chunk_size=None)
        return iter(lambda: raw.read1(65536, decode_content=True), b"")

    def finish(self) -> None:
        """After ``[DONE]``: read to the end of the body (waiting a second at most), so the
        connection goes back to the pool instead of being closed."""
        sock = getattr(getattr(self.response.raw, "connection", None), "sock", None)
        try:
            if sock is not None:
                sock.settimeout(DRAIN_SECONDS)
            for _ in iter(self):
                pass
        except READ_ERRORS:
            return
        self.response._content_consumed = True       # so close() releases, not closes

    def close(self) -> None:
        self.response.close()


class Reader(sseclient.SSEClient):
    """sseclient-py with a fast path for the shape nearly every event has, one
    ``data: ...`` line ended by a blank line with LF line ends: a block of them is split in
    one pass and each becomes an Event without its line loop (sseclient reads a stream line
    by line, a regular expression and a debug log per line: 40% of the client's time at
    5,000 chunks). Any other event (fields, comments, several data lines) is parsed by
    sseclient itself, and a stream with a CR in it is read by sseclient from there on; the
    events are the same (tests/client/test_sse.py compares them with sseclient's own)."""

    def __init__(self, event_source, char_enc: str = "utf-8"):
        super().__init__(event_source, char_enc)
        self.source, self.encoding = event_source, char_enc

    def events(self):
        for batch in self.batches():
            for event in batch:
                yield sseclient.Event(data=event) if type(event) is str else event

    def batches(self) -> Iterator[list]:
        """For each read, its events: the data of each plain one (a str), every other one as
        sseclient parsed it (an Event). A list a read, so a token costs no generator step."""
        tail, enc = b"", self.encoding
        source = iter(self.source)
        for chunk in source:
            data = tail + chunk if tail else chunk
            if b"\r" in data:                       # CR or CRLF line ends: sseclient's way
                for event in sseclient.SSEClient(chain([data], source), enc).events():
                    yield [event]
                return
            *events, tail = data.split(b"\n\n")
            batch: list = []
            for event in events:
                if event.startswith(b"data: ") and b"\n" not in event:
                    batch.append(event[6:].decode(enc))
                else:
                    batch.extend(sseclient.SSEClient(iter([event + b"\n\n"]), enc).events())
            yield batch
        if tail:
            yield list(sseclient.SSEClient(iter([tail]), enc).events())


class Unfinished(StreamError):
    """The body ended cleanly (its last chunk arrived) with no ``[DONE]``: complete if the
    answer said it had finished (a finish reason, a final usage chunk), cut off if not."""


def _object(name: str, data: str) -> dict:
    """An event's JSON object, or :class:`StreamError` for an error event, data that is not a
    JSON object, or an object that carries an error."""
    if name == "error":
        raise StreamError("The service reported an error mid-stream: "
                          f"{' '.join(data.split())[:200] or 'no reason given'}")
    try:
        obj = _decode(data)
    except (ValueError, RecursionError):
        raise StreamError(f"Malformed event in the stream: {data[:60]!r}") from None
    if type(obj) is not dict:
        raise StreamError(f"Malformed event in the stream: {data[:60]!r}")
    if ("errors" in obj or "error" in obj) and (obj.get("errors") or obj.get("error")):
        detail = obj.get("errors") or obj.get("error")
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            detail = detail[0].get("message")
        raise StreamError(f"The service reported an error mid-stream: {detail}")
    return obj


def events(source, decoder=None) -> Iterator:
    """JSON events until ``[DONE]``; :class:`StreamError` on a malformed event, an error event
    or a dropped connection, :class:`Unfinished` at a clean end without ``[DONE]``. ``source``
    is anything SSEClient reads. With a protocol's ``decoder``, its typed events instead (one
    generator for both steps: each layer costs every token), and a clean end without
    ``[DONE]`` is complete if the answer said it had finished (as Cloudflare's own provider
    reads it)."""
    chunk = decoder.chunk if decoder is not None else None
    try:
        for batch in Reader(source).batches():
            for item in batch:
                name, data = ("message", item) if type(item) is str else (item.event, item.data)
                if name != "error" and len(data) < 16 and data.strip() == "[DONE]":
                    finish = getattr(source, "finish", None)
                    if finish is not None:
                        finish()
                    if decoder is not None:
                        yield from decoder.end()
                    return
                obj = _object(name, data)
                if chunk is None:
                    yield obj
                else:
                    yield from chunk(obj)
    except StreamError:
        raise
    except UnicodeDecodeError:
        raise StreamError("Malformed event in the stream: not UTF-8") from None
    except READ_ERRORS as exc:
        if stalled(exc):
            raise StreamError("The answer stalled: no data came in time", stalled=True) from None
        raise StreamError(f"The connection dropped mid-stream ({type(exc).__name__})") from None
    if decoder is not None and decoder.finished:
        yield from decoder.end()
        return
    raise Unfinished("The stream ended before the answer did (no finish, no [DONE])")
