"""%cfai commands, %config, completion, load/unload, credentials."""
import json

import pytest
from IPython.core.error import UsageError

from shellkit import cfai, run, session



def test_model_show_and_set(ip, fake):
    out = run(ip, "%cfai model")
    assert out.stdout == ("Default model: @cf/zai-org/glm-4.7-flash (automatic for this "
                          "backend) · 131k context · $0.0605/$0.4 per M · reasoning · tools\n"
                          "  GLM-4.7-Flash: fast multilingual dialogue and tool calling\n")
    out = run(ip, "%cfai model mistral")
    assert "Default model: @cf/mistral/mistral-7b-instruct-v0.1" in out.stdout
    cfai(ip)
    assert fake.last.model == "@cf/mistral/mistral-7b-instruct-v0.1"
    out = run(ip, "%cfai model nosuch")
    assert "UnknownModel" in out.stdout and session(ip).model.startswith("@cf/mistral")


def test_config_magic_sets_traits(ip, fake):
    run(ip, '%config CfaiMagics.default_model = "llama2"')
    cfai(ip)
    assert fake.last.model == "@cf/meta/llama-2-7b-chat-fp16"
    run(ip, "%config CfaiMagics.max_retries = 0")
    fake.enqueue(status=503)
    cfai(ip)
    assert [r.kind for r in fake.requests] == ["search", "run", "run"]   # the list once
    out = run(ip, "%config CfaiMagics")
    assert "default_model" in out.stdout and fake.token not in out.stdout


def test_models_lists_the_catalog(ip, fake):
    out = run(ip, "%cfai models")
    bundle = out.outputs[0]["data"]
    lines = bundle["text/plain"].splitlines()
    assert lines[0].split() == ["model", "context", "$/M", "in", "$/M", "out", "requests",
                                "flags", "status", "source"]
    assert lines[1].split() == ["*", "@cf/zai-org/glm-4.7-flash", "131,072", "0.0605", "0.4",
                                "300/min", "reasoning,", "tools", "-", "built-in"]
    int8 = next(line for line in lines if "llama-2-7b-chat-int8" in line)
    assert int8.split()[1:] == ["2,048", "-", "-", "300/min", "-", "retired", "2026-05-30",
                                "built-in"]
    kimi = next(line for line in lines if "kimi-k2.6" in line)
    assert "paid plan" in kimi and "0.95" in kimi and "262,144" in kimi
    assert "20/min (50 with gateway credits)" in kimi
    order = [line.split()[0] for line in lines[1:]]
    assert order.index("@cf/moonshotai/kimi-k2.6") < order.index("@cf/meta/llama-2-7b-chat-int8")
    assert "<table" in bundle["text/html"] and \
        '<td title="OpenAI gpt-oss-20b, open weights">@cf/openai/gpt-oss-20b</td>' in \
        bundle["text/html"]
    only = run(ip, "%cfai models llama-3").outputs[0]["data"]["text/plain"].splitlines()
    assert [line.split()[0] for line in only[1:]] == [
        "@cf/meta/llama-3.1-8b-instruct-fast", "@cf/meta/llama-3.2-11b-vision-instruct",
        "@cf/meta/llama-3.3-70b-instruct-fp8-fast"]
    assert run(ip, "%cfai models nothing-like-this").outputs[0]["data"]["text/plain"] == \
        "No model matches."
    run(ip, '%config CfaiMagics.default_model = "gemma4"')              # an alias
    starred = run(ip, "%cfai models gemma-4").outputs[0]["data"]["text/plain"].splitlines()[1]
    assert starred.split()[:2] == ["*", "@cf/google/gemma-4-26b-a4b-it"]


def test_models_refresh_reads_the_live_properties(ip, fake):
    fake.models.append({"name": "@cf/meta/llama-3-8b-instruct", "task": {"name": "Text Generation"},
                        "properties": [
                            {"property_id": "context_window", "value": "8192"},
                            {"property_id": "price", "value": [
                                {"unit": "per M input tokens", "price": 0.28, "currency": "USD"},
                                {"unit": "per M output tokens", "price": 0.83,
                                 "currency": "USD"}]},
                            {"property_id": "function_calling", "value": "true"},
                            {"property_id": "planned_deprecation_date", "value": "2099-01-31"}]})
    fake.models.append({"name": "@cf/../../evil", "task": {"name": "Text Generation"}})
    text = run(ip, "%cfai models --refresh").outputs[0]["data"]["text/plain"]
    row = next(line for line in text.splitlines() if "llama-3-8b-instruct " in line + " ")
    assert row.split() == ["@cf/meta/llama-3-8b-instruct", "8,192", "0.28", "0.83", "300/min",
                           "tools", "retires", "2099-01-31", "live"]
    assert "evil" not in text                        # an id that would change a URL path
    assert "@cf/meta/llama-3-8b-instruct" in session(ip).catalog.names()


def test_history_chats_reset(ip, fake):
    cfai(ip, "", "hello")
    cfai(ip, "--chat work", "task")
    out = run(ip, "%cfai history")
    assert out.stdout == "user: hello\nassistant: Echo: hello\n"
    assert run(ip, "%cfai chats").stdout == "default: 1 turn\nwork: 1 turn\n"
    assert run(ip, "%cfai history nope").stdout.startswith("No conversation named 'nope'")
    assert run(ip, "%cfai reset work").stdout == "Reset: work.\n"
    assert run(ip, "%cfai history work").stdout == "The conversation 'work' is empty.\n"
    run(ip, "%cfai reset --all")
    assert run(ip, "%cfai chats").stdout == "default: 0 turns\nwork: 0 turns\n"


def test_save_and_load_survive_a_restart(ip, fake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfai(ip, "-s 'Be kind.'", "remember me")
    out = run(ip, "%cfai save")
    path = tmp_path / "notebook.cfai-chats.json"
    assert path.exists() and "notebook.cfai-chats.json" in out.stdout
    saved = json.loads(path.read_text())
    assert saved["chats"]["default"]["system"] == "Be kind."
    assert fake.token not in path.read_text() and fake.account_id not in path.read_text()
    run(ip, "%unload_ext cfai_magic")           # a new kernel, as far as the state goes
    run(ip, "%load_ext cfai_magic")
    assert run(ip, "%cfai chats").stdout == "No conversations yet.\n"
    assert "Loaded default" in run(ip, "%cfai load").stdout
    cfai(ip, "", "do you remember?")
    assert [m["content"] for m in fake.last.body["messages"]] == \
        ["Be kind.", "remember me", "Echo: remember me", "do you remember?"]
    run(ip, f"%cfai save {tmp_path / 'other.json'}")
    assert (tmp_path / "other.json").exists()


def test_default_chat_file_is_named_after_the_notebook(ip, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "analysis.ipynb"))
    run(ip, "%reload_ext cfai_magic")
    assert session(ip).store.default_path() == tmp_path / "analysis.cfai-chats.json"


def test_load_errors_are_one_line(ip, tmp_path):
    out = run(ip, f"%cfai load {tmp_path / 'none.json'}")
    assert "InputError: No chat file at" in out.stdout and out.stdout.count("\n") == 1
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert "is not a cfai chat file" in run(ip, f"%cfai load {bad}").stdout
    for content, why in [(b"\xff{}", "not UTF-8 text (byte 1)"), (b"[1]", "it: input should be"),
                         (b'{"cfai_chats": 1, "chats": []}', "chats: input should be")]:
        bad.write_bytes(content)
        out = run(ip, f"%cfai load {bad}")
        assert f"is not a cfai chat file: {why}" in out.stdout and out.stdout.count("\n") == 1
    folder = tmp_path / "folder"
    folder.mkdir()
    for command in ("load", "save"):
        out = run(ip, f"%cfai {command} {folder}")
        assert type(out.error).__name__ == "InputError" and out.stdout.count("\n") == 1
        assert "Is a directory" in out.stdout


def test_a_damaged_chat_is_skipped_and_the_others_load(ip, fake, tmp_path):
    """A structurally broken chat used to be accepted, then fail every later cell of it."""
    path = tmp_path / "chats.json"
    good = {"turns": [{"messages": [{"role": "user", "content": "hi"}], "answer": "hello"}]}
    broken = {"turns": [{"messages": "hi", "answer": 3}]}
    path.write_text(json.dumps({"cfai_chats": 1, "chats": {"good": good, "broken": broken,
                                                           "worse": []}}))
    out = run(ip, f"%cfai load {path}")
    assert out.error is None and out.stdout.count("\n") == 1
    assert out.stdout.startswith("Loaded good from ")
    assert "skipped 2 damaged: 'broken' (turns.0.messages: input should be a valid list" in \
        out.stdout and "'worse' (it: input should be a valid dictionary" in out.stdout
    assert "broken" not in session(ip).store
    cfai(ip, "--chat good", "and now?")
    assert [m["content"] for m in fake.last.body["messages"]] == ["hi", "hello", "and now?"]


def test_login_uses_getpass_and_shows_nothing(ip, fake, monkeypatch):
    for key in ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN"):
        monkeypatch.delenv(key)
    answers = iter([fake.account_id, fake.token])
    prompts = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or next(answers))
    out = run(ip, "%cfai login")
    assert len(prompts) == 2 and "hidden" in prompts[1]
    assert fake.token not in out.stdout and fake.account_id not in out.stdout
    out = cfai(ip, "-m llama2", "after login")
    assert out.error is None and fake.last.authorized


def test_config_masks_secrets(ip, fake):
    out = run(ip, "%cfai config")
    assert "api_token          set (hidden)" in out.stdout
    assert fake.token not in out.stdout and fake.account_id not in out.stdout


def test_missing_credentials_explicit_cloudflare(ip, monkeypatch):
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    run(ip, "%cfai backend cloudflare")
    out = cfai(ip)
    assert "ConfigError: No Cloudflare API token. Set CLOUDFLARE_API_TOKEN (in a notebook, " \
           "%cfai login asks for it)" in out.stdout


def test_backend_url(ip, fake):
    out = run(ip, "%cfai backend http://example.com/x")
    assert "ConfigError: Refusing plain http" in out.stdout
    run(ip, f"%cfai backend {fake.url}")
    assert cfai(ip).error is None


def test_bad_subcommand_is_a_usage_error(ip):
    assert isinstance(run(ip, "%cfai frobnicate").error, UsageError)
    assert isinstance(run(ip, "%cfai model a b").error, UsageError)
    assert isinstance(run(ip, "%cfai save 'unclosed").error, UsageError)


def test_unload_removes_everything(ip):
    run(ip, "%unload_ext cfai_magic")
    assert ip.find_cell_magic("cfai") is None and ip.find_line_magic("cfai") is None
    assert "CfaiMagics" not in ip.magics_manager.registry
    assert not any(type(c).__name__ == "CfaiMagics" for c in ip.configurables)
    out = run(ip, "%%cfai\nhi")
    assert out.error is not None
    run(ip, "%load_ext cfai_magic")
    assert ip.find_cell_magic("cfai") is not None


@pytest.mark.parametrize("line,expected", [
    ("%cfai model ll", {"llama2", "llama2-fp16", "llama2-int8"}),
    ("%cfai mo", {"model", "models"}),
    ("%%cfai -m mis", {"mistral"}),
    ("%%cfai --chat x -m @cf/mistral/", {"@cf/mistral/mistral-7b-instruct-v0.1"}),
    ("%%cfai -m ", {"glm", "@cf/zai-org/glm-4.7-flash", "llama2"}),
])
def test_tab_completion(ip, line, expected):
    from IPython.core.completer import provisionalcompleter
    with provisionalcompleter():
        completions = list(ip.Completer.completions(line, len(line)))
    completed = {(line[:c.start] + c.text).rsplit(" ", 1)[-1] for c in completions}
    assert expected <= completed
    assert not completed & {"and", "if", "import", "None"}   # only ours, not Python's keywords


def test_help_names_the_magics_as_they_are_typed(ip):
    from IPython.utils.capture import capture_output
    with capture_output() as line_help:
        ip.run_cell("%cfai?")
    with capture_output() as cell_help:
        ip.run_cell("%%cfai?")
    assert "::" not in line_help.stdout and "%%cfai model" not in line_help.stdout
    assert "\n%cfai model [name]\n    Show or set" in line_help.stdout
    assert "%%cfai [-m MODEL]" in cell_help.stdout and "cfai_cell" not in cell_help.stdout


@pytest.mark.parametrize("setting, allowed", [
    ("timeout = -5", "give seconds from 0.1 to 3600"),
    ("timeout = float('nan')", "give seconds from 0.1 to 3600"),
    ("max_retries = 1000", "give a whole number from 0 to 20"),
    ("updates_per_second = 0", "give from 0.1 to 120 updates a second"),
    ("value_budget = -1", "give 0 (half the model's context)"),
    ("default_model = 'two words'", "is not a model id")])
def test_a_bad_setting_is_refused_when_set(ip, fake, caplog, setting, allowed):
    """It used to be accepted, then fail the next cell as 'Unexpected ... This is a bug'."""
    name = setting.split()[0]
    before = getattr(session(ip).settings, name)
    with caplog.at_level("ERROR"):
        out = run(ip, f"%config CfaiMagics.{setting}")
    assert out.error is None and "Traceback" not in out.stdout
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith(f"CfaiMagics.{name} = ")
    assert allowed in lines[0]
    assert getattr(session(ip).settings, name) == before            # the old value stands
    assert cfai(ip, "", "still fine").error is None


def test_settings_refuse_out_of_range_values_in_python_too():
    from traitlets import TraitError
    from cfai_magic.config import Settings
    with pytest.raises(TraitError, match="out of range"):
        Settings(timeout=0)


def test_an_unknown_default_model_says_where_it_came_from(ip, fake):
    run(ip, "%config CfaiMagics.default_model = 'mistrl-7b'")
    out = cfai(ip, "", "hi")
    assert type(out.error).__name__ == "UnknownModel" and out.stdout.count("\n") == 1
    assert "(from CfaiMagics.default_model, used when a cell gives no -m)" in out.stdout
    assert "Did you mean" in out.stdout and "mistral" in out.stdout
    assert "%cfai model NAME" in out.stdout
    out = cfai(ip, "-m mistral", "hi")                    # a cell's own -m still works
    assert out.error is None


def test_quiet_mistakes_get_a_suggestion(ip, fake):
    ip.user_ns["sales"] = 3
    out = cfai(ip, "--once", "How big is {sale}? And {sales.nothing}? And {{sale}}.")
    shown = out.final["data"]["text/plain"]
    assert "{sale} is not a variable here, so it was sent as written (did you mean {sales}?)" \
        in shown
    assert "{sales.nothing}: sales has no such attribute or key" in shown
    assert fake.last.body["prompt"] == "How big is {sale}? And {sales.nothing}? And {sale}."
    out = cfai(ip, "--temprature 0.2", "hi")
    assert str(out.error) == ("unrecognized arguments: --temprature 0.2. --temprature: did you "
                              "mean --temperature?")
    out = run(ip, "%cfai modle")
    assert str(out.error).endswith("modle: did you mean model or models?")
    out = cfai(ip, "-m gemma-3-12", "hi")
    assert type(out.error).__name__ == "UnknownModel" and "Did you mean" in out.stdout
