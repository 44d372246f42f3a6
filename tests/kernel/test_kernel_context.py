"""The notebook as context, through a real kernel against the fake: {Err} and %cfai fix after
a failing cell (its code lands in the next cell's input, unrun), a large DataFrame described
within 4 kB, {df!r}, --context N, %cfai explain, and cells that must never be sent."""
import json

import pytest


GLM = "@cf/zai-org/glm-4.7-flash"


@pytest.fixture
def k(kernel):
    kernel.run("%load_ext cfai_magic")
    return kernel


def asked(fake) -> str:
    """What the last request asked: its prompt, or its last message's text."""
    body = fake.last.body
    return body["prompt"] if "prompt" in body else body["messages"][-1]["content"]


def test_err_sends_the_exception_its_line_and_a_short_traceback(k, fake_workers_ai):
    k.run("def ratio(a, b):\n    return a / b")
    k.run("total = 10\nparts = 0\nshare = ratio(total, parts)")         # fails
    k.run(f"%%cfai -m {GLM} --once\nWhy did this fail? {{Err}}")
    text = asked(fake_workers_ai)
    assert "ZeroDivisionError: division by zero" in text
    assert "The failing line: share = ratio(total, parts)" in text
    assert "in ratio: return a / b" in text
    assert "total = 10" not in text.split("The failing line")[0]      # no locals, no code dump
    k.run(f"%%cfai -m {GLM} --once\nAnd this? {{Err[3]}}")
    assert "ZeroDivisionError: division by zero" in asked(fake_workers_ai)


def test_fix_sends_code_error_and_variables_and_puts_the_fix_below(k, fake_workers_ai):
    k.run("import pandas as pd\nframe = pd.DataFrame({'a': [1, 2]})")
    k.run("frame['b'].sum()")                                            # KeyError: 'b'
    fake_workers_ai.enqueue("There is no column b.\n\n```python\nframe['a'].sum()\n```")
    messages, reply = k.run("%cfai fix")
    assert reply["content"]["status"] == "ok", reply["content"]
    prompt = asked(fake_workers_ai)
    assert "```python\nframe['b'].sum()\n```" in prompt
    assert "KeyError: 'b'" in prompt and "The failing line: frame['b'].sum()" in prompt
    assert "- frame: pandas.DataFrame, shape (2, 1)" in prompt
    [payload] = reply["content"]["payload"]
    assert payload["source"] == "set_next_input" and payload["text"] == "frame['a'].sum()"
    assert payload["replace"] is False


def test_a_large_frame_is_described_in_under_4_kb_naming_every_column(k, fake_workers_ai):
    k.run("import numpy as np, pandas as pd\n"
          "df = pd.DataFrame(np.random.default_rng(0).random((100_000, 50)),\n"
          "                  columns=[f'col_{i}' for i in range(50)])\n"
          "df.iloc[:7, 3] = np.nan")
    messages, _ = k.run(f"%%cfai -m {GLM} --once\nWhat is in {{df}}?")
    prompt = asked(fake_workers_ai)
    described = prompt[len("What is in "):-1]
    assert len(described.encode()) < 4096, len(described)
    assert all(f"col_{i} (float64" in described for i in range(50))
    assert "DataFrame: 100,000 rows × 50 columns" in described and "7 null" in described
    assert "| 0 |" in described                                 # the first rows, as a table
    plain = [m for m in messages if m["msg_type"] in ("display_data", "update_display_data")]
    notice = plain[-1]["content"]["data"]["text/plain"].splitlines()[0]
    assert notice.startswith("{df}: a DataFrame of 100,000 × 50, described in ")
    k.run(f"%%cfai -m {GLM} --once\nThe repr: {{df!r}}")
    assert "[100000 rows x 50 columns]" in asked(fake_workers_ai)


def test_context_sends_exactly_the_last_three_cells_and_their_outputs(k, fake_workers_ai):
    for i in range(1, 6):
        k.run(f"step_{i} = {i} * 10\nstep_{i}")
    k.run(f"%%cfai -m {GLM} --once --context 3\nWhat happened?")
    prompt = asked(fake_workers_ai)
    for i in (3, 4, 5):
        assert f"step_{i} = {i} * 10\nstep_{i}\n```\nIts output:\n{i * 10}" in prompt
    for i in (1, 2):
        assert f"step_{i} =" not in prompt
    assert prompt.rstrip().endswith("What happened?")


def test_cells_that_log_in_or_show_the_token_are_never_sent(k, fake_workers_ai):
    token = fake_workers_ai.token
    answers = iter([fake_workers_ai.account_id, token])
    _, reply = k.collect(k.send("note = 'before login'\n%cfai login", allow_stdin=True),
                         answer=lambda prompt: next(answers))
    assert reply["content"]["status"] == "ok", reply["content"]
    k.run("import os\nos.environ['CLOUDFLARE_API_TOKEN']")               # shows the token
    k.run("print('the token:', os.environ['CLOUDFLARE_API_TOKEN'])")      # prints it
    k.run("safe = 1\nprint('all is well')")
    k.run(f"%%cfai -m {GLM} --once --context 5\nSummarise")
    body = json.dumps(fake_workers_ai.last.body)
    assert token not in body and "CLOUDFLARE_API_TOKEN" not in body
    assert "before login" not in body and "the token:" not in body
    assert "A cell:" in body and "load_ext" not in body                     # ours: not context
    assert "safe = 1\nprint('all is well')\n```\nIts output:\nall is well" in asked(
        fake_workers_ai)                                                    # the rest is sent
    k.run("raise ValueError('the token is ' + os.environ['CLOUDFLARE_API_TOKEN'])")
    k.run(f"%%cfai -m {GLM} --once\nWhy? {{Err}}")
    assert token not in str(fake_workers_ai.last.body) and "********" in str(
        fake_workers_ai.last.body)


def test_explain_sends_the_cell_its_printed_text_and_its_result(k, fake_workers_ai):
    k.run("values = [3, 1, 2]\nprint(len(values), 'values')\nsorted(values)")
    fake_workers_ai.enqueue("It sorts the list.")
    _, reply = k.run("%cfai explain 2")               # In[1] is the fixture's %load_ext
    assert reply["content"]["status"] == "ok", reply["content"]
    prompt = asked(fake_workers_ai)
    assert "```python\nvalues = [3, 1, 2]\nprint(len(values), 'values')\nsorted(values)\n```" \
        in prompt
    assert "Its output:\n3 values\n[1, 2, 3]" in prompt
    assert k.value("_cfai") == "'It sorts the list.'"


def test_fix_says_in_one_line_when_there_is_nothing_it_may_send(k, fake_workers_ai):
    _, reply = k.run("%cfai fix")
    [line] = reply["content"]["traceback"]
    assert "No cell has failed yet" in line and "%cfai fix 3" in line
    k.run("import os\nprint(os.environ['CLOUDFLARE_API_TOKEN'])\n1 / 0")   # fails, showed it
    _, reply = k.run("%cfai fix")
    assert reply["content"]["ename"] == "InputError"
    [line] = reply["content"]["traceback"]
    assert "logs in or shows a credential; it is never sent" in line
    _, reply = k.run("%cfai explain 99")
    [line] = reply["content"]["traceback"]
    assert "No cell 99 ran" in line
    assert not fake_workers_ai.asked
