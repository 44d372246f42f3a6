"""requests' adapter with one change: informational answers (1xx, such as ``103 Early
Hints``) before the real one are skipped, as RFC 9110 says a client must; http.client skips
only ``100 Continue`` and would hand the 103 over as the answer."""
from __future__ import annotations

import http.client

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

MAX_INFORMATIONAL = 20           # 1xx answers skipped before one is refused


class _Response(http.client.HTTPResponse):
    def _read_status(self):
        for _ in range(MAX_INFORMATIONAL):
            version, status, reason = super()._read_status()
            if not (100 < status < 200) or status == 101:
                return version, status, reason       # 100 is skipped by http.client itself
            http.client.parse_headers(self.fp)       # the 1xx's own headers
        raise http.client.BadStatusLine(f"more than {MAX_INFORMATIONAL} informational answers")


class _Connection(HTTPConnection):
    response_class = _Response


class _SecureConnection(HTTPSConnection):
    response_class = _Response


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _SecurePool(HTTPSConnectionPool):
    ConnectionCls = _SecureConnection


class Adapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _SecurePool}
