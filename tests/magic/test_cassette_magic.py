"""%cfai record / replay / cassette, and the environment variables, through the magic."""
import json

import pytest

from cfai_magic.session import Session
from shellkit import cfai, run, session



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


@pytest.mark.parametrize("response", [None, {"chunks": None}, {"chunks": [1, 2]},
                                      {"chunks": ["a"], "usage": "lots"}],
                         ids=["no-response", "chunks-null", "chunks-not-text", "bad-usage"])
def test_a_broken_cassette_is_one_line(ip, fake, tmp_path, response):
    path = tmp_path / "broken.json"
    entry = {"request": {"backend": "local", "model": "@local/gemma-3-270m",
                         "body": {"messages": [{"role": "user", "content": "hi"}]}}}
    if response is not None:
        entry["response"] = response
    good = {"request": {"backend": "local", "model": "@local/gemma-3-270m",
                        "body": {"messages": [{"role": "user", "content": "ok"}]}},
            "response": {"chunks": ["fine"]}}
    path.write_text(json.dumps({"cfai_cassette": 1, "interactions": [entry]}))
    out = run(ip, f"%cfai replay {path}")
    assert type(out.error).__name__ == "InputError" and out.stdout.count("\n") == 1
    assert "is not a cfai cassette: nothing in it can be replayed (answer 0: response" in out.stdout
    # beside a good entry, the broken one is skipped and named, and the good one replays
    path.write_text(json.dumps({"cfai_cassette": 1, "interactions": [entry, good]}))
    out = run(ip, f"%cfai replay {path}")
    assert out.error is None and out.stdout.count("\n") == 2
    assert "Skipped 1 damaged entry of broken.json (answer 0: response" in out.stdout
    run(ip, "%cfai model @local/gemma-3-270m")
    replayed = cfai(ip, "", "ok")
    assert replayed.error is None and "fine" in replayed.final["data"]["text/plain"]


def test_record_into_a_path_that_cannot_be_written_says_so_first(ip, fake, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    out = run(ip, f"%cfai record {blocker}/sub/c.json")
    assert type(out.error).__name__ == "InputError" and "Cannot record into" in out.stdout
    assert out.stdout.count("\n") == 1
    # a file that becomes unwritable after recording starts: the answer and the turn stay
    path = tmp_path / "ok" / "c.json"
    run(ip, f"%cfai record {path}")
    path.unlink()
    path.mkdir()                         # a folder where the file goes: the append fails
    out = cfai(ip, "", "keep me")
    assert out.error is None
    assert "Not recorded: cannot write c.json" in out.final["data"]["text/plain"]
    assert [t.answer for t in session(ip).store.get().turns] == ["Echo: keep me"]


@pytest.mark.parametrize("env", [{"CFAI_CASSETTE": "missing.json", "CFAI_CASSETTE_MODE": "replay"},
                                 {"CFAI_CASSETTE": "any.json", "CFAI_CASSETTE_MODE": "bogus"}],
                         ids=["missing-file", "bogus-mode"])
def test_a_bad_cassette_setting_leaves_the_magic_usable(ip, fake, tmp_path, monkeypatch, env):
    monkeypatch.chdir(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    run(ip, "%unload_ext cfai_magic")
    loaded = run(ip, "%load_ext cfai_magic")
    assert loaded.error is None                                  # it used to fail here
    out = cfai(ip, "", "hello")
    assert type(out.error).__name__ == "InputError" and out.stdout.count("\n") == 1
    assert "CFAI_CASSETTE" in out.stdout and "%cfai cassette off" in out.stdout
    assert not fake.asked     # nothing went out instead
    run(ip, "%cfai cassette off")
    assert cfai(ip, "", "hello").error is None


def test_a_damaged_cassette_from_the_environment_is_said_once(ip, fake, tmp_path, monkeypatch):
    path = tmp_path / "env.json"
    good = {"request": {"backend": "local", "model": "@local/gemma-3-270m",
                        "body": {"messages": [{"role": "user", "content": "ok"}]}},
            "response": {"chunks": ["fine"]}}
    path.write_text(json.dumps({"cfai_cassette": 2, "generation": "g"}) + "\n" +
                    json.dumps(good) + "\n" + '{"request": 1}\n')
    monkeypatch.setenv("CFAI_CASSETTE", str(path))
    monkeypatch.setenv("CFAI_CASSETTE_MODE", "replay")
    run(ip, "%unload_ext cfai_magic")
    loaded = run(ip, "%load_ext cfai_magic")
    assert loaded.stdout == ("Skipped 1 damaged entry of env.json (line 3: request: input "
                             "should be a valid dictionary or instance of Request (and 1 more)); "
                             "the others "
                             "replay.\n")
    assert "Skipped 1 damaged entry" in run(ip, "%cfai cassette").stdout
    run(ip, "%cfai cassette off")


def test_the_missing_local_model_hint_is_a_command_for_this_install(monkeypatch):
    import sys
    from pathlib import Path

    from cfai_magic.local import runtime
    root = Path(runtime.__file__).resolve().parents[2]
    monkeypatch.setattr(sys, "prefix", str(root / ".venv"))       # the clone's own .venv
    assert runtime.install_hint("local") == \
        f"Run bash {root / 'notebooks' / 'demo.sh'} once (it builds the local model into this .venv)"
    monkeypatch.setattr(sys, "prefix", "/somewhere/else")         # a checkout, another env
    assert runtime.install_hint("local") == f"pip install -e '{root}[local]'"
    monkeypatch.setattr(runtime, "__file__", "/site-packages/cfai_magic/local/runtime.py")
    assert runtime.install_hint("local") == \
        "pip install 'cfai_magic[local]' (from where you got cfai_magic)"
