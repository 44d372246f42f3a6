"""config.py alone: settings refused out of range, secrets that never show, base URLs parsed
once, credentials that say how to set what is missing."""
import pickle

import pytest
from traitlets import TraitError

from cfai_magic.config import (Secret, Settings, check_base_url, credentials, is_loopback, mask,
                               origin)
from cfai_magic.errors import ConfigError

TOKEN = "a-token-of-forty-characters-0123456789ab"


@pytest.mark.parametrize("name, value", [("timeout", 0.0), ("timeout", float("nan")),
                                         ("max_retries", -1), ("updates_per_second", 1e9)])
def test_settings_out_of_range_are_refused_with_what_is_allowed(name, value):
    with pytest.raises(TraitError, match=f"CfaiMagics.{name} = .* is out of range: give"):
        setattr(Settings(), name, value)


def test_a_default_model_with_spaces_is_not_a_model_id():
    with pytest.raises(TraitError, match="is not a model id"):
        Settings().default_model = "glm 4.7"
    settings = Settings()
    settings.default_model = "  glm  "
    assert settings.default_model == "glm"


def test_a_secret_never_shows_itself():
    secret = Secret(TOKEN)
    assert TOKEN not in repr(secret) and TOKEN not in str(secret) and TOKEN not in f"{secret}"
    assert secret.scrub(f"Bearer {TOKEN} sent") == "Bearer ******** sent"
    assert Secret("short").scrub("a short word") == "a short word"     # too short to mask
    assert secret.fingerprint() != Secret(TOKEN + "x").fingerprint()
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert mask(secret) == "set (hidden)" and mask(Secret("")) == "not set"


def test_credentials_from_the_environment_and_what_is_missing(monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", " acc ")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    creds = credentials()
    assert creds.account_id == "acc" and creds.token.reveal() == TOKEN
    assert TOKEN not in repr(creds)
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    with pytest.raises(ConfigError, match="No Cloudflare API token") as info:
        credentials()
    assert "CLOUDFLARE_API_TOKEN" in info.value.hint


@pytest.mark.parametrize("url, problem", [
    ("https://user:pw@example.com/v4", "user name or password"),
    ("https://example.com/v4?x=1", "query or a fragment"),
    ("https://exa mple.com", "space, a control character"),
    ("https://example.com\\@evil.com", "space, a control character or a backslash"),
    ("http://example.com/v4", "Refusing plain http to example.com"),
    ("ftp://example.com", r"is not an http\(s\) URL")])
def test_base_urls_that_could_send_the_token_elsewhere_are_refused(url, problem):
    with pytest.raises(ConfigError, match=problem):
        check_base_url(url)


def test_base_urls_that_are_fine():
    assert check_base_url("https://api.cloudflare.com/client/v4/") == \
        "https://api.cloudflare.com/client/v4"
    assert check_base_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert origin("https://API.example.com/x") == ("https", "api.example.com", 443)
    assert is_loopback("::1") and is_loopback("localhost") and not is_loopback("10.0.0.1")
