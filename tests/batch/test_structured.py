"""schema=: response_format where the model has JSON mode, parsed and checked answers."""
import json

import pandas as pd
import pytest
from pydantic import BaseModel

import cfai_magic
from cfai_magic.errors import InputError

SCHEMA = {"type": "object", "properties": {"sentiment": {"enum": ["positive", "negative"]},
                                           "stars": {"type": "integer"}},
          "required": ["sentiment", "stars"]}


class Review(BaseModel):
    sentiment: str
    stars: int


def run_map(session, rows, **kw):
    kw.setdefault("model", "llama3")
    return cfai_magic.map("Rate: {row}", rows, session=session, namespace={}, mode="final", **kw)


def test_json_schema_is_sent_and_answers_come_back_parsed(session, fake):
    fake.enqueue('{"sentiment": "positive", "stars": 5}', '{"sentiment": "negative", "stars": 1}')
    out = run_map(session, ["good", "bad"], schema=SCHEMA, concurrency=1)
    assert out == [{"sentiment": "positive", "stars": 5}, {"sentiment": "negative", "stars": 1}]
    body = fake.last.body
    assert body["response_format"] == {"type": "json_schema", "json_schema": SCHEMA}
    assert body["stream"] is False             # JSON mode does not stream


def test_a_pydantic_model_gives_its_objects(session, fake):
    fake.enqueue('```json\n{"sentiment": "positive", "stars": 4}\n```')
    [review] = run_map(session, ["nice"], schema=Review)
    assert isinstance(review, Review) and review.stars == 4
    assert fake.last.body["response_format"]["json_schema"]["title"] == "Review"


def test_an_answer_that_does_not_match_is_a_row_error_with_its_text(session, fake):
    fake.enqueue('{"sentiment": "meh", "stars": 3}', "no json here")
    out = run_map(session, ["a", "b"], schema=SCHEMA, concurrency=1)
    assert out == [None, None]
    errors = cfai_magic.batch.last.errors
    assert "does not match the schema at sentiment" in errors["error"][0]
    assert "is not JSON" in errors["error"][1]
    assert errors["answer"][1] == "no json here"


def test_columns_true_gives_new_columns_on_the_index(session, fake):
    fake.enqueue('{"sentiment": "positive", "stars": 5}', '{"sentiment": "negative", "stars": 1}')
    df = pd.DataFrame({"review": ["great", "awful"]}, index=[7, 9])
    cols = cfai_magic.map("Rate: {review}", df, session=session, namespace={}, mode="final",
                          model="llama3", schema=SCHEMA, columns=True, concurrency=1)
    assert list(cols.columns) == ["sentiment", "stars"] and list(cols.index) == [7, 9]
    assert list(cols["stars"]) == [5, 1]
    joined = df.join(cols)
    assert list(joined.loc[9]) == ["awful", "negative", 1]


def test_a_model_without_json_mode_gets_the_schema_as_words(session, fake):
    fake.enqueue('{"sentiment": "positive", "stars": 5}')
    [obj] = run_map(session, ["good"], schema=SCHEMA, model="glm")
    assert obj["stars"] == 5
    body = fake.last.body
    assert "response_format" not in body
    assert json.dumps(SCHEMA, separators=(",", ":")) in body["messages"][0]["content"]


def test_the_openai_protocol_wraps_the_schema_as_openai_expects(fake, monkeypatch):
    from cfai_magic.session import Session
    monkeypatch.setenv("OPENAI_API_KEY", fake.token)
    session = Session()
    session.set_backend(fake.openai_url, "openai")
    fake.enqueue('{"sentiment": "positive", "stars": 5}')
    run_map(session, ["good"], schema=Review, model="@cf/zai-org/glm-4.7-flash")
    fmt = fake.last.body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Review"
    assert fmt["json_schema"]["schema"]["required"] == ["sentiment", "stars"]


def test_bad_schemas_are_refused_before_sending(session, fake):
    with pytest.raises(InputError, match="not a valid JSON Schema"):
        run_map(session, ["a"], schema={"type": "nonsense"})
    with pytest.raises(InputError, match="columns=True needs schema="):
        run_map(session, ["a"], columns=True)
    assert fake.asked == []
