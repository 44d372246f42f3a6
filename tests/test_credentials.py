"""Credentials go only where they belong: the Cloudflare token to Cloudflare (or a root the user
set for it), an engine's own key to the engine and nothing without one, no URL that parses two
ways, and no redirect followed."""
import pytest

from cfai_magic import errors
from cfai_magic.client import WorkersAI
from cfai_magic.testing import FakeWorkersAI, Reply

CF_TOKEN = "cf-token-must-stay-with-cloudflare-0123456789"
ENGINE_KEY = "engine-key-of-its-own-abcdef"
GLM = "@cf/zai-org/glm-4.7-flash"


@pytest.fixture
def engine():
    """An OpenAI-compatible engine on loopback that knows its own key only."""
    with FakeWorkersAI(token=ENGINE_KEY) as server:
        server.v1 = server.url.rsplit("/client/v4", 1)[0] + "/v1"
        yield server


@pytest.fixture
def cloudflare_env(monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "acct")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", CF_TOKEN)



def test_an_engine_gets_its_own_key_and_never_the_cloudflare_token(engine, cloudflare_env,
                                                                   monkeypatch):
    monkeypatch.setenv("CFAI_PROTOCOL", "openai")
    monkeypatch.setenv("CFAI_BASE_URL", engine.v1)
    monkeypatch.setenv("OPENAI_API_KEY", ENGINE_KEY)
    assert WorkersAI().run(GLM, prompt="hi").done
    assert engine.last.credential == "ours"
    monkeypatch.delenv("OPENAI_API_KEY")                 # no key of its own: no header at all
    with pytest.raises(errors.AuthError) as info:
        WorkersAI(max_retries=0).run(GLM, prompt="hi")
    assert engine.last.credential == "none"
    assert "OPENAI_API_KEY" in str(info.value) and "CLOUDFLARE_API_TOKEN" not in str(info.value)


def test_in_a_cell_too_and_with_key_env(engine, cloudflare_env, monkeypatch, shell, capsys):
    shell.run_line_magic("cfai", f"backend {engine.v1} --protocol openai")
    shell.run_cell(f"%%cfai -m {GLM}\nhello")
    assert engine.last.credential == "none"             # the Cloudflare token stayed home
    line = capsys.readouterr().out
    assert "AuthError: Authentication error (HTTP 401, code 10000). The engine wants a key: " \
           "set OPENAI_API_KEY" in line
    monkeypatch.setenv("MY_ENGINE_KEY", ENGINE_KEY)
    shell.run_line_magic("cfai", f"backend {engine.v1} --protocol openai --key-env MY_ENGINE_KEY")
    shell.run_cell(f"%%cfai -m {GLM}\nhello")
    assert engine.last.credential == "ours" and shell.user_ns["_cfai_answer"].done
    config = capsys.readouterr().out + (shell.run_line_magic("cfai", "config") or "")
    assert ENGINE_KEY not in config and CF_TOKEN not in config


def test_the_engines_own_message_is_kept(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "a-wrong-key-1234567")
    with FakeWorkersAI(token=None) as engine:
        engine.enqueue(status=401, code=401, message="Invalid API Key")
        client = WorkersAI(base_url=engine.url.rsplit("/client/v4", 1)[0] + "/v1",
                           protocol="openai", max_retries=0)
        with pytest.raises(errors.AuthError) as info:
            client.run(GLM, prompt="hi")
    assert str(info.value) == ("Invalid API Key (HTTP 401, code 401). The engine refused the key: check "
                               "OPENAI_API_KEY (the key it was started with), or choose "
                               "another with %cfai backend URL --key-env NAME")


def test_fastapi_and_plain_text_error_bodies_keep_their_words():
    assert str(errors.from_response(401, {"detail": "Invalid API key"})).startswith(
        "Invalid API key (HTTP 401)")
    assert str(errors.from_response(502, "Bad gateway: upstream died\n<html>")).startswith(
        "Bad gateway: upstream died (HTTP 502)")


def test_cloudflare_token_goes_to_a_root_the_user_set_for_cloudflare(cloudflare_env):
    with FakeWorkersAI(token=CF_TOKEN, account_id="acct") as custom:
        client = WorkersAI(base_url=custom.url)
        assert client.backend.kind == "custom" and not client.backend.billed
        assert client.run("llama2", prompt="hi").done and custom.last.credential == "ours"


@pytest.mark.parametrize("url", [
    "http://evil.example\\@127.0.0.1/client/v4",
    "http://127.0.0.1@evil.example/client/v4",
    "http://user:pass@127.0.0.1/client/v4",
    "http://evil.example#@127.0.0.1/client/v4",
    "http://evil.example?@127.0.0.1/client/v4",
    "http://127.0.0.1.evil.example/client/v4",
    "http://127.0.0.1\t.evil.example/client/v4",
    "http://127.0.0.1/client/v4\n",
    "http://127.0.0.1 /client/v4",
    "http://127.0.0.1\x00.evil.example/",
    "https://api.cloudflare.com\\@evil.example/client/v4",
    "ftp://127.0.0.1/client/v4",
])
def test_urls_that_parse_two_ways_are_refused(url, cloudflare_env, monkeypatch, shell):
    with pytest.raises(errors.ConfigError):
        WorkersAI(base_url=url)
    with pytest.raises(errors.ConfigError):
        WorkersAI(base_url=url, protocol="openai", api_token="k" * 20)
    if "\x00" not in url:                                # no environment variable holds one
        monkeypatch.setenv("CFAI_BASE_URL", url)
        with pytest.raises(errors.ConfigError):
            WorkersAI()
    with pytest.raises(errors.ConfigError) as info:
        shell.run_line_magic("cfai", "backend '" + url + "'")
    assert str(info.value).startswith(("Base URL", "Refusing plain http"))
    assert "\n" not in info.value._render_traceback_()[0]


def test_a_redirect_to_another_host_sends_nothing_there(cloudflare_env):
    with FakeWorkersAI(token=CF_TOKEN, account_id="acct") as first, \
            FakeWorkersAI(token=None, account_id="acct") as elsewhere:
        target = f"{elsewhere.url}/accounts/acct/ai/run/@cf/meta/llama-2-7b-chat-fp16"
        for status in (301, 302, 303, 307, 308):
            first.enqueue(Reply(status=status, headers={"Location": target}))
        client = WorkersAI(base_url=first.url, max_retries=0)
        for status in (301, 302, 303, 307, 308):
            with pytest.raises(errors.Redirected) as info:
                client.run("llama2", prompt="the prompt, for this server only")
            assert str(info.value).startswith(f"The server answered {status}, asking to send "
                                              f"the request to {target}; nothing was sent there")
        assert elsewhere.requests == []
        assert len(first.requests) == 5                 # each asked once, none followed


def test_the_token_is_only_added_for_its_own_origin(cloudflare_env):
    """The auth object is the last step: a request built for another origin gets nothing."""
    import requests

    from cfai_magic.config import origin
    client = WorkersAI(base_url="http://127.0.0.1:9/client/v4")
    same = requests.Request("POST", "http://127.0.0.1:9/x").prepare()
    other = requests.Request("POST", "http://127.0.0.1:10/x").prepare()
    client._auth(same), client._auth(other)
    assert "Authorization" in same.headers and "Authorization" not in other.headers
    assert origin("HTTP://LOCALHOST/x") == ("http", "localhost", 80)
    assert CF_TOKEN not in repr(client._auth) + repr(client.backend)
