"""Raw HTTP on a socket, for tests that play a client or a server byte by byte."""


def read_head(sock, data: bytes = b"") -> bytes:
    """What ``sock`` sends until the end of a message's headers (a blank line), or until it
    closes; ``data`` is what was read of it already."""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data
