"""Structured answers: a JSON Schema (or a pydantic model) sent as ``response_format`` where the
model has JSON mode, else as an instruction; each answer parsed and checked against it."""
from __future__ import annotations

import json

from ..errors import InputError
from ..render import answer_json

JSON_OBJECT = {"type": "json_object"}


class Schema:
    def __init__(self, schema):
        self.model = None
        if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
            self.model, schema = schema, schema.model_json_schema()
        if not isinstance(schema, dict):
            raise InputError(f"schema= takes a JSON Schema (a dict) or a pydantic model, not "
                             f"a {type(schema).__name__}")
        import jsonschema
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as err:
            raise InputError(f"schema= is not a valid JSON Schema: {err.message}") from None
        self.schema = schema
        self._validator = jsonschema.validators.validator_for(schema)(schema)

    @classmethod
    def any(cls) -> Schema:
        """Any JSON object (JSON mode without a schema: ``-f json``)."""
        shape = cls({"type": "object"})
        shape.free = True
        return shape

    free = False

    @property
    def names(self) -> list[str]:
        """The top-level properties (the columns of ``columns=True``)."""
        return list((self.schema.get("properties") or {}).keys())

    def response_format(self) -> dict:
        """Workers AI's form; the OpenAI protocol wraps it as it expects."""
        if self.free:
            return dict(JSON_OBJECT)
        return {"type": "json_schema", "json_schema": self.schema}

    def instruction(self) -> str:
        if self.free:
            return "Answer with one JSON object and nothing else."
        return ("Answer with one JSON object and nothing else, matching this JSON Schema: "
                + json.dumps(self.schema, separators=(",", ":")))

    def parse(self, text: str):
        """The answer as an object (a pydantic one for a pydantic schema); ValueError, one line,
        when it is not JSON or does not match."""
        try:
            value = answer_json(text)
        except ValueError as err:
            raise ValueError(f"the answer is not JSON ({err})") from None
        errors = sorted(self._validator.iter_errors(value), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path) or "top level"
            raise ValueError(f"the answer does not match the schema at {where}: "
                             f"{errors[0].message}")
        if self.model is not None:
            try:
                return self.model.model_validate(value)
            except Exception as err:        # pydantic's ValidationError: its first line
                raise ValueError(f"the answer does not fit {self.model.__name__}: "
                                 f"{str(err).splitlines()[0]}") from None
        return value
