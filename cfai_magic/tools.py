"""The notebook's Python functions as tools a model can call.

A :class:`Tool` is made from a function: its name, the first paragraph of its docstring as the
description, and a JSON Schema of its parameters from the signature and type hints, built by
pydantic (so ``Annotated[str, Field(description=...)]``, defaults, enums, dataclasses and
models all work as pydantic knows them). Arguments from the model are validated against the
same model before the call; a mismatch, or an exception the function raises, is the call's
result, sent back to the model as an error it can correct.

``@cfai_magic.tool`` (or ``@tool(name=..., description=..., confirm=True)``) marks a function
with its own name or description, or asks before each call.
"""
from __future__ import annotations

import inspect
import json
import time
from dataclasses import dataclass, field

from .errors import InputError

MARK = "__cfai_tool__"


@dataclass
class Step:
    """One call the model asked for, and what came of it."""
    name: str
    arguments: dict
    id: str
    result: str = ""
    error: str | None = None
    seconds: float = 0.0
    declined: bool = False

    def as_dict(self) -> dict:
        return {"name": self.name, "arguments": self.arguments, "id": self.id,
                "result": self.result, "error": self.error,
                "seconds": round(self.seconds, 4), "declined": self.declined}


class Tool:
    def __init__(self, fn, *, name: str | None = None, description: str | None = None,
                 confirm: bool = False):
        if not callable(fn):
            raise InputError(f"{fn!r} is not a function, so it cannot be a tool")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "") or type(fn).__name__
        if not self.name.isidentifier():
            raise InputError(f"A tool's name must be an identifier, not {self.name!r}")
        doc = inspect.getdoc(fn) or ""
        self.description = description if description is not None else \
            doc.split("\n\n", 1)[0].strip()
        self.confirm = confirm
        self._model = None

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    @property
    def model(self):
        """A pydantic model of the parameters (made on first use: pydantic loads slowly)."""
        if self._model is None:
            from pydantic import ConfigDict, create_model
            try:
                signature = inspect.signature(self.fn)
                hints = _hints(self.fn)
            except (TypeError, ValueError, NameError) as err:
                raise InputError(f"Cannot read the parameters of {self.name}: {err}") from None
            fields = {}
            for p in signature.parameters.values():
                if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    continue
                default = ... if p.default is p.empty else p.default
                fields[p.name] = (hints.get(p.name, p.annotation if p.annotation is not p.empty
                                            else object), default)
            self._model = create_model(f"{self.name}_arguments",
                                       __config__=ConfigDict(extra="forbid",
                                                             arbitrary_types_allowed=True),
                                       **fields)
        return self._model

    def schema(self) -> dict:
        """The parameters' JSON Schema (the titles pydantic adds left out)."""
        try:
            schema = self.model.model_json_schema()
        except Exception as err:              # a hint JSON Schema cannot say
            raise InputError(f"The parameters of {self.name} have no JSON Schema: "
                             f"{str(err).splitlines()[0]}",
                             hint="Use plain type hints (str, int, float, bool, list, "
                                  "Literal, a pydantic model)") from None
        return _untitled(schema)

    def spec(self) -> dict:
        """The tool as the OpenAI protocol (and today's /ai/run) sends it."""
        return {"type": "function", "function": {"name": self.name,
                                                 "description": self.description,
                                                 "parameters": self.schema()}}

    def run(self, arguments, call_id: str = "") -> Step:
        """Validate the arguments, call the function, and keep its result or its error."""
        step = Step(self.name, arguments if isinstance(arguments, dict) else {}, call_id)
        started = time.perf_counter()
        try:
            if not isinstance(arguments, dict) or "_raw" in arguments:
                raise ValueError(f"the arguments are not a JSON object: {arguments!r:.200}")
            values = self._validated(arguments)
            step.result = result_text(self.fn(**values))
        except _Invalid as err:
            step.error = f"Invalid arguments for {self.name}: {err}"
        except Exception as err:              # the call's error is its result
            step.error = f"{type(err).__name__}: {err}"
        finally:
            step.seconds = time.perf_counter() - started
        return step

    def _validated(self, arguments: dict) -> dict:
        from pydantic import ValidationError
        try:
            checked = self.model.model_validate(arguments)
        except ValidationError as err:
            raise _Invalid("; ".join(f"{'.'.join(map(str, e['loc'])) or '(arguments)'}: "
                                     f"{e['msg']}" for e in err.errors())) from None
        return {name: getattr(checked, name) for name in type(checked).model_fields}


class _Invalid(Exception):
    pass


def result_text(value) -> str:
    """A function's return value as the text sent back to the model."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _hints(fn) -> dict:
    import typing
    target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else type(fn).__call__
    return typing.get_type_hints(target, include_extras=True)


def _untitled(schema):
    if isinstance(schema, dict):
        return {k: _untitled(v) for k, v in schema.items()
                if not (k == "title" and isinstance(v, str))}
    if isinstance(schema, list):
        return [_untitled(v) for v in schema]
    return schema


def tool(fn=None, *, name: str | None = None, description: str | None = None,
         confirm: bool = False):
    """Mark a function as a tool, with its own name, description, or ``confirm=True``.
    Usable bare (``@tool``) or with arguments; the function itself is returned unchanged."""
    def mark(f):
        setattr(f, MARK, dict(name=name, description=description, confirm=confirm))
        return f
    return mark(fn) if fn is not None else mark


def as_tool(obj) -> Tool:
    if isinstance(obj, Tool):
        return obj
    return Tool(obj, **(getattr(obj, MARK, None) or {}))


def as_tools(items) -> list[Tool]:
    """Tools from functions (or Tool objects); names must differ."""
    tools = [as_tool(t) for t in (items or ())]
    names = [t.name for t in tools]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"Two tools are named {', '.join(twice)}",
                         hint="Give one another name with @cfai_magic.tool(name=...)")
    return tools


@dataclass
class Toolbox:
    """The tools of one turn: looked up by name, the calls run in order."""
    tools: list[Tool] = field(default_factory=list)
    confirm: bool = False

    def __bool__(self) -> bool:
        return bool(self.tools)

    def specs(self) -> list[dict]:
        return [t.spec() for t in self.tools]

    def names(self) -> list[str]:
        return [t.name for t in self.tools]

    def get(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)

    def call(self, name: str, arguments, call_id: str) -> Step:
        found = self.get(name)
        if found is None:
            return Step(name, arguments if isinstance(arguments, dict) else {}, call_id,
                        error=f"No tool named {name!r}; the tools are "
                              + ", ".join(self.names()))
        return found.run(arguments, call_id)

    def asks(self, name: str) -> bool:
        found = self.get(name)
        return self.confirm or bool(found and found.confirm)


def named(names: str, namespace) -> list[Tool]:
    """The tools named in ``names`` (``"f, g"`` or ``"f g"``: callables of the notebook), or one
    line naming what is not there."""
    import difflib
    import re
    found = []
    for name in [n for n in re.split(r"[\s,]+", names or "") if n]:
        value = namespace.get(name) if name.isidentifier() else None
        if value is None or not callable(value):
            close = difflib.get_close_matches(name, [k for k, v in namespace.items()
                                                     if callable(v) and not k.startswith("_")],
                                              n=3, cutoff=0.6)
            raise InputError(f"No function named {name!r} in the notebook to use as a tool",
                             hint=f"Did you mean {', '.join(close)}?" if close else
                             "Define it in a cell first, or check the name")
        found.append(value)
    return as_tools(found)
