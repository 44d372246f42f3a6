"""context.py in an InteractiveShell: what a cell prints is kept (head and tail) without
getting in its way, values within a budget, which cells are ours, and the budget itself."""
import sys

import numpy as np
import pandas as pd
import pytest

from cfai_magic import context
from cfai_magic.catalog import Catalog


def last(shell) -> context.Ran:
    return context.errors_of(shell).cells[-1]


def test_what_a_cell_prints_is_kept_and_still_printed(shell, capsys):
    shell.run_cell("print('one'); import sys; print('two', file=sys.stderr); 40 + 2")
    cell = last(shell)
    assert cell.printed == "one\ntwo\n" and cell.result == 42
    assert "one" in capsys.readouterr().out                 # the user still sees it
    assert not isinstance(sys.stdout, context._Tee)          # and the stream is given back


def test_a_flood_keeps_its_head_and_tail_in_bounded_memory(shell, capsys):
    shell.run_cell("for i in range(200_000): print(f'line {i}')")
    printed = last(shell).printed
    assert printed.startswith("line 0\nline 1\n") and printed.endswith("line 199999\n")
    assert len(printed) < context.PRINTED + 100 and "characters left out" in printed
    capsys.readouterr()


def test_cells_that_swap_the_streams_or_run_cells_leave_them_as_they_were(shell, capsys):
    before = sys.stdout
    shell.run_cell("%%capture captured\nprint('hidden')")
    assert sys.stdout is before and "hidden" in shell.user_ns["captured"].stdout
    shell.run_cell("get_ipython().run_cell('print(\"inner\")')\nprint('outer')")
    assert sys.stdout is before
    assert [c.printed for c in list(context.errors_of(shell).cells)[-2:]] == ["inner\n",
                                                                             "inner\nouter\n"]
    capsys.readouterr()


def test_a_failing_cell_is_recorded_with_its_line_and_no_locals(shell):
    shell.run_cell("secret_local = 'do-not-send'\ndef f(x):\n    return x['missing']\nf({})")
    record = context.errors_of(shell).last
    text = record.for_model()
    assert text.startswith("KeyError: 'missing'") and "The failing line: f({})" in text
    assert "in f: return x['missing']" in text and "do-not-send" not in text


@pytest.mark.parametrize("code, is_ours", [
    ("%%cfai\nhello", True), ("%cfai history", True), ("%load_ext cfai_magic\n%cfai model glm", True),
    ("%load_ext cfai_magic\nimport pandas as pd", False), ("x = 1  # %%cfai", False), ("", False)])
def test_which_cells_are_ours(code, is_ours):
    assert context.ours(code) is is_ours


def test_values_within_a_budget():
    text = "x" * 10_000
    cut = context.for_model(text, 1_000)
    assert len(cut) < 1_100 and "characters left out" in cut and cut.startswith("xxx")
    series = pd.Series(np.arange(1_000_000, dtype=float), name="speed")
    described = context.for_model(series)
    assert described.startswith("Series 'speed': 1,000,000 values of float64, 0 null")
    assert "max 1e+06" in described and len(described) < context.DESCRIBED
    array = np.zeros((500, 500))
    assert context.for_model(array).startswith("Array: shape (500, 500), dtype float64")
    assert context.for_model(np.arange(5)) == "[0 1 2 3 4]"          # small: as it is
    wide = pd.DataFrame(np.ones((3, 400)), columns=[f"c{i}" for i in range(400)])
    assert len(context.for_model(wide)) <= context.DESCRIBED


def test_the_budget_follows_the_model_and_the_setting():
    catalog = Catalog()
    small = catalog.resolve("@local/gemma-3-270m")            # 4,096 tokens
    large = catalog.resolve("@cf/google/gemma-4-26b-a4b-it")  # 256,000 tokens
    assert context.budget_for(small) == 8_192
    assert context.budget_for(large) == context.BUDGET
    assert context.budget_for(large, cap=5_000) == 5_000


def test_the_value_budget_setting_caps_what_one_value_takes(fake, shell, capsys):
    shell.user_ns["notes"] = "word " * 20_000
    shell.run_cell("%config CfaiMagics.value_budget = 600")
    shell.run_cell("%%cfai -m glm --once\nSummarise {notes}")
    prompt = fake.last.body["prompt"]
    assert len(prompt) < 700 and "characters left out" in prompt
    assert "{notes}: 100,000 characters, cut to 584 to fit" in capsys.readouterr().out


def test_printed_keeps_exactly_the_head_and_the_tail_whatever_the_writes():
    """Printed cuts its tail now and then, not every write: what it keeps is still exactly the
    first and the last characters, for writes of any size."""
    import random
    rng = random.Random(7)
    for sizes in ([1] * 40_000, [rng.randint(0, 3_000) for _ in range(200)], [50_000], [10, 9_000]):
        kept, full = context.Printed(), []
        for i, size in enumerate(sizes):
            text = (f"{i}:" * size)[:size]
            kept.add(text)
            full.append(text)
        whole = "".join(full)
        head, tail = whole[:context.Printed.HEAD], whole[-context.Printed.TAIL:]
        if len(whole) <= context.PRINTED:
            assert kept.text() == whole
        else:
            left = len(whole) - len(head) - len(tail)
            assert kept.text() == f"{head}\n[… {left:,} characters left out …]\n{tail}"
