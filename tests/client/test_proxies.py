"""The environment's proxy settings, honoured as requests honours them, and read again when
they change (the transport keeps them per host: reading them cost 0.3-0.4 ms a request)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cfai_magic.client import WorkersAI
from cfai_magic.errors import StreamError

MODEL = "@cf/meta/llama-2-7b-chat-int8"
NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
         "all_proxy", "no_proxy", "REQUEST_METHOD", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


class Server:
    """Answers every request with a whole answer naming ``who``; keeps each request line."""

    def __init__(self, who):
        lines = self.lines = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                lines.append(self.requestline)
                self.rfile.read(int(self.headers["Content-Length"]))
                body = json.dumps({"success": True, "result": {"response": who}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers(monkeypatch):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    proxy, direct = Server("proxy"), Server("direct")
    yield proxy, direct
    proxy.close()
    direct.close()


def test_a_proxy_is_used_bypassed_and_dropped_as_the_environment_says(servers, monkeypatch):
    proxy, direct = servers
    client = WorkersAI("acct", "t0ken", base_url=direct.url + "/client/v4", max_retries=0)
    try:
        assert client.run(MODEL, prompt="x").text == "direct"
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert client.run(MODEL, prompt="x").text == "proxy"
        assert proxy.lines[-1].startswith(f"POST {direct.url}/client/v4/accounts/acct/ai/run/")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert client.run(MODEL, prompt="x").text == "direct"
        monkeypatch.delenv("NO_PROXY")
        assert client.run(MODEL, prompt="x").text == "proxy"
        monkeypatch.delenv("HTTP_PROXY")
        assert client.run(MODEL, prompt="x").text == "direct"
        assert len(proxy.lines) == 2 and len(direct.lines) == 3
    finally:
        client.close()


def test_the_ca_bundle_of_the_environment_is_the_one_verified_against(servers, monkeypatch):
    client = WorkersAI("acct", "t0ken", base_url="https://api.cloudflare.com/client/v4")
    try:
        url = client.url(MODEL)
        assert client.transport._settings(url)["verify"] is True
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corporate.pem")
        assert client.transport._settings(url)["verify"] == "/etc/ssl/corporate.pem"
    finally:
        client.close()


def test_netrc_credentials_are_not_sent_to_an_engine_without_a_token(servers, monkeypatch,
                                                                     tmp_path):
    """requests would add ~/.netrc's login for the host to a request without auth; a prompt's
    credentials are the ones the backend has, nothing else."""
    proxy, direct = servers
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password s3cret-from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    seen = []
    handler = direct.httpd.RequestHandlerClass
    original = handler.do_POST

    def do_post(self):
        seen.append(self.headers.get("Authorization"))
        original(self)
    monkeypatch.setattr(handler, "do_POST", do_post)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = WorkersAI(base_url=direct.url + "/v1", protocol="openai", max_retries=0)
    try:
        with pytest.raises(StreamError, match="no choices"):   # a Workers AI answer's shape
            client.run("gemma-3-270m", prompt="x")
    finally:
        client.close()
    assert seen and seen[0] is None
