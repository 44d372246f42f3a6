"""%%cfai --map ROWS in an InteractiveShell: the cell is the template, the flags are a cell's."""
import pandas as pd

from shellkit import cfai, run


def test_map_cell_fills_each_row_and_stores_the_answers(ip, fake):
    ip.user_ns["df"] = pd.DataFrame({"review": ["great", "awful"]}, index=["x", "y"])
    ip.user_ns["tone"] = "Briefly"
    out = cfai(ip, "--map df -m llama3 --max-tokens 20 --out summary",
               "{tone}, summarise: {review}")
    assert out.error is None
    summary = ip.user_ns["summary"]
    assert list(summary.index) == ["x", "y"]
    assert list(summary) == ["Echo: Briefly, summarise: great", "Echo: Briefly, summarise: awful"]
    assert fake.last.body["max_tokens"] == 20
    assert "cfai map: 2 rows · 2 answered" in out.stdout
    assert ip.user_ns["_cfai_batch"].stats.answered == 2


def test_map_cell_with_json_format_uses_json_mode(ip, fake):
    ip.user_ns["items"] = ["a", "b"]
    fake.enqueue('{"n": 1}', '{"n": 2}')
    out = cfai(ip, "--map items -m llama3 -f json --out parsed --concurrency 1", "JSON for {row}")
    assert out.error is None and ip.user_ns["parsed"] == [{"n": 1}, {"n": 2}]
    assert fake.last.body["response_format"] == {"type": "json_object"}


def test_json_format_cell_uses_json_mode_where_the_model_has_it(ip, fake):
    fake.enqueue('{"ok": true}')
    out = cfai(ip, "-m llama3 -f json --out answer", "give json")
    assert out.error is None and ip.user_ns["answer"] == {"ok": True}
    assert fake.last.body["response_format"] == {"type": "json_object"}
    assert fake.last.body["stream"] is False
    fake.enqueue('```json\n{"ok": 1}\n```')
    cfai(ip, "-m glm -f json --out answer", "give json")     # no JSON mode: parsed from text
    assert "response_format" not in fake.last.body and ip.user_ns["answer"] == {"ok": 1}


def test_map_cell_refuses_what_does_not_apply(ip, fake):
    ip.user_ns["rows"] = ["a"]
    for line, says in (("--map nowhere", "needs a variable holding the rows"),
                       ("--map rows --chat other", "--chat, --new, --once"),
                       ("--map rows -f code", "not into new cells")):
        out = cfai(ip, line, "{row}")
        assert out.error is not None and says in str(out.error), (line, out.error)
    out = cfai(ip, "--map rows", "no fields here")
    assert "none of the rows' fields" in str(out.error)
    assert fake.asked == []


def test_map_cell_with_a_bad_row_still_answers_the_others(ip, fake):
    ip.user_ns["rows"] = ["fine", "word " * 200_000]
    out = cfai(ip, "--map rows -m llama2 --out answers", "{row}")
    assert out.error is None
    assert ip.user_ns["answers"][0] == "Echo: fine" and ip.user_ns["answers"][1] is None
    assert "1 failed" in out.stdout
    errors = run(ip, "_cfai_batch.errors").result.result
    assert list(errors["row"]) == [1]
