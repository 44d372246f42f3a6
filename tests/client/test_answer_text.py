"""Answer.text is joined once and stays right as parts come or are replaced."""
from cfai_magic.client.answer import Answer
from cfai_magic.client.events import Text


def test_text_follows_new_parts_and_replaced_parts():
    answer = Answer("m", {})
    assert answer.text == ""
    answer.parts += ["a", "b"]
    assert answer.text == "ab" and answer.text is answer.text        # joined once
    answer.parts.append("c")
    assert answer.text == "abc"
    answer.parts, answer.size = [], 0                 # a tool call written as text is dropped
    assert answer.text == ""
    answer.parts.append("z")
    assert answer.text == "z" and str(answer) == "z"


def test_text_read_while_streaming_is_the_text_so_far():
    answer = Answer("m", {})
    seen = []
    for piece in ("Hel", "lo", " world"):
        answer.take(Text(piece))
        seen.append(answer.text)
    assert seen == ["Hel", "Hello", "Hello world"]
