"""parsing.py alone: a cell's text as a prompt or messages, {fields} filled from a namespace."""
import pytest

from cfai_magic.errors import InputError
from cfai_magic.parsing import field_names, lookup, MISSING, parse_cell


def test_plain_text_is_a_prompt_with_its_fields_filled():
    parsed = parse_cell("  Say {word} to {who.name}  \n", {"word": "hi", "who": type(
        "P", (), {"name": "Ada"})()})
    assert parsed.text == "Say hi to Ada" and not parsed.is_messages


def test_role_lines_are_messages_and_a_continuation_joins_the_one_above():
    parsed = parse_cell("system: be brief\nuser: first line\nsecond line\nassistant: ok")
    assert parsed.messages == [{"role": "system", "content": "be brief"},
                               {"role": "user", "content": "first line\nsecond line"},
                               {"role": "assistant", "content": "ok"}]


def test_a_json_list_is_messages_with_values_escaped_for_json():
    parsed = parse_cell('[{"role": "user", "content": "About {t}"}]', {"t": 'a "quote"\n'})
    assert parsed.messages == [{"role": "user", "content": 'About a "quote"\n'}]


def test_braces_that_name_nothing_and_doubled_braces_stay_as_written():
    parsed = parse_cell('Keep {{x}} and {"k": 1} and {nothing}', {"x": 1})
    assert parsed.text == 'Keep {x} and {"k": 1} and {nothing}'


def test_fill_false_sends_the_text_as_written():
    assert parse_cell("Say {word}", {"word": "hi"}, fill=False).text == "Say {word}"


def test_lookup_walks_attributes_keys_and_indexes():
    ns = {"d": {"k": [10, 20]}}
    assert lookup("d['k'][1]", ns) == 20 and lookup("d['k'][-1]", ns) == 20
    assert lookup("d['nope']", ns) is MISSING and lookup("absent", ns) is MISSING


def test_field_names_leave_out_doubled_braces():
    assert field_names("{a} {b.c} {{d}} {e[0]}") == {"a", "b", "e"}


@pytest.mark.parametrize("cell, message", [
    ("", "The cell is empty"), ("   \n  ", "The cell is empty"),
    ("user: hi\nassistant:", "The assistant: message on line 2 is empty"),
    ("Human: hi", "Unknown role 'Human' on line 1"),      # looks like a role: said so
    ("Note: the cell is a prompt", None),                  # does not: a prompt
])
def test_bad_cells_are_one_line(cell, message):
    if message is None:
        assert parse_cell(cell).text == cell
        return
    with pytest.raises(InputError, match=message):
        parse_cell(cell)
