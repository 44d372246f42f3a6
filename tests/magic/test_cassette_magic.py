"""%cfai record / replay / cassette, and the environment variables, through the magic."""
import pytest

from cfai_magic.session import Session
from shellkit import cfai, run


def session(ip):
    return ip.magics_manager.registry["CfaiMagics"].session


def test_record_and_replay_give_the_same_cells(ip, fake, tmp_path, monkeypatch):
    path = tmp_path / "nb.json"
    assert "Recording answers into" in run(ip, f"%cfai record {path}").stdout
    first = cfai(ip, "-m llama2 --seed 3", "Tell me a story").final["data"]["text/plain"]
    second = cfai(ip, "", "And then?").final["data"]["text/plain"]
    run(ip, "%cfai cassette off")
    run(ip, "%unload_ext cfai_magic")

    fake.stop()
    for key in ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "CFAI_BASE_URL"):
        monkeypatch.delenv(key)
    run(ip, "%load_ext cfai_magic")
    assert "(no network)" in run(ip, f"%cfai replay {path}").stdout
    again = cfai(ip, "-m llama2 --seed 3", "Tell me a story").final["data"]["text/plain"]
    assert again.split("\n✓")[0] == first.split("\n✓")[0] == "Echo: Tell me a story"
    assert again.split(" · ")[1] == first.split(" · ")[1]            # same token count
    assert again.endswith("· fake")
    again2 = cfai(ip, "", "And then?").final["data"]["text/plain"]
    assert again2.split("\n✓")[0] == second.split("\n✓")[0]
    miss = cfai(ip, "", "Something never recorded")
    # the default model follows where the cassette was recorded (Cloudflare, here the fake)
    assert "CassetteMiss: No recording in nb.json for @cf/zai-org/glm-4.7-flash" in miss.stdout
    assert run(ip, "%cfai cassette").stdout.startswith("Cassette: Cassette(")
    assert run(ip, "%cfai cassette off").stdout == "Cassette: off\n"


def test_environment_selects_a_cassette(tmp_path, monkeypatch, fake):
    path = tmp_path / "env.json"
    monkeypatch.setenv("CFAI_CASSETTE", str(path))
    monkeypatch.setenv("CFAI_CASSETTE_MODE", "record")
    s = Session()
    assert s.cassette.mode == "record"
    s.client().run("llama2", prompt="recorded via env")
    monkeypatch.setenv("CFAI_CASSETTE_MODE", "replay")
    for key in ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "CFAI_BASE_URL"):
        monkeypatch.delenv(key)
    fake.stop()
    assert Session().client().run("llama2", prompt="recorded via env").text == \
        "Echo: recorded via env"


def test_final_display_mode_publishes_once(ip, fake, monkeypatch):
    fake.enqueue(chunks=["a"] * 50, drip=0.01)
    rich = cfai(ip).final
    monkeypatch.setenv("CFAI_DISPLAY", "final")
    run(ip, "%reload_ext cfai_magic")
    fake.enqueue(chunks=["a"] * 50, drip=0.01)
    out = cfai(ip)
    assert len(out.outputs) == 1 and not out.outputs[0]["update"]
    strip = lambda text: text.split(" · ")[:2]                       # noqa: E731
    assert strip(out.outputs[0]["data"]["text/plain"]) == strip(rich["data"]["text/plain"])
    assert out.outputs[0]["metadata"]["cfai"]["status"] == "done"


def test_auto_mode_reaches_a_backend_only_for_a_miss(tmp_path, monkeypatch, fake):
    path = tmp_path / "auto.json"
    monkeypatch.setenv("CFAI_CASSETTE", str(path))
    monkeypatch.setenv("CFAI_CASSETTE_MODE", "auto")
    Session().client().run("llama2", prompt="first")          # a miss: recorded from the fake
    assert [r.body["prompt"] for r in fake.requests] == ["first"]
    for key in ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "CFAI_BASE_URL"):
        monkeypatch.delenv(key)
    fake.stop()
    s = Session()                      # no credentials, no server: a hit needs neither
    assert s.client().run("llama2", prompt="first").text == "Echo: first"
    from cfai_magic import errors
    monkeypatch.setattr("cfai_magic.local.runtime.installed", lambda: False)
    with pytest.raises(errors.ConfigError, match="embedded local model is not installed"):
        s.client().run("llama2", prompt="a miss needs a backend")
