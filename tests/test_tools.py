"""Tools from Python functions (tools.py): schema from signature, hints and docstring through
pydantic; arguments validated before the call; errors are results."""
from typing import Annotated, Literal

import pytest
from pydantic import Field

from cfai_magic import errors
from cfai_magic.tools import Tool, Toolbox, as_tools, named, tool


def get_weather(city: str, unit: Literal["C", "F"] = "C", days: int = 1) -> dict:
    """The weather in a city.

    Longer notes that are not the description."""
    return {"city": city, "unit": unit, "days": days}


def test_the_schema_comes_from_hints_defaults_and_docstring():
    spec = Tool(get_weather).spec()
    assert spec["type"] == "function" and spec["function"]["name"] == "get_weather"
    assert spec["function"]["description"] == "The weather in a city."
    params = spec["function"]["parameters"]
    assert params["required"] == ["city"] and params["additionalProperties"] is False
    assert params["properties"] == {"city": {"type": "string"},
                                    "unit": {"enum": ["C", "F"], "type": "string",
                                             "default": "C"},
                                    "days": {"type": "integer", "default": 1}}


def test_field_descriptions_through_annotated():
    def find(query: Annotated[str, Field(description="What to look for")]) -> str:
        return query
    assert Tool(find).schema()["properties"]["query"] == {"type": "string",
                                                          "description": "What to look for"}


def test_arguments_are_validated_and_coerced_before_the_call():
    calls = []

    def add(a: int, b: int) -> int:
        calls.append((a, b))
        return a + b
    t = Tool(add)
    assert t.run({"a": "2", "b": 3}).result == "5" and calls == [(2, 3)]   # "2" is an int
    bad = t.run({"a": "two"})
    assert bad.error.startswith("Invalid arguments for add: a: Input should be a valid "
                                "integer") and "b: Field required" in bad.error
    assert t.run({"a": 1, "b": 2, "c": 3}).error.endswith("c: Extra inputs are not permitted")
    assert t.run({"_raw": "{not json"}).error.startswith("ValueError: the arguments are not")
    assert calls == [(2, 3)]                              # no bad call ever reached add


def test_an_exception_is_the_result():
    def broken(x: int) -> int:
        raise ZeroDivisionError("no")
    step = Tool(broken).run({"x": 1}, "call_7")
    assert step.error == "ZeroDivisionError: no" and step.id == "call_7" and step.result == ""


def test_results_become_text():
    assert Tool(lambda: {"b": [1, 2]}, name="f").run({}).result == '{"b": [1, 2]}'
    assert Tool(lambda: "plain", name="g").run({}).result == "plain"


def test_the_decorator_names_describes_and_asks():
    @tool(name="weather", description="Short.", confirm=True)
    def w(city: str) -> str:
        return city
    [t] = as_tools([w])
    assert (t.name, t.description, t.confirm) == ("weather", "Short.", True)
    assert w("x") == "x"                                   # the function is unchanged
    assert Toolbox([t]).asks("weather") and not Toolbox([Tool(get_weather)]).asks("get_weather")

    @tool
    def bare(x: int) -> int:
        return x
    assert as_tools([bare])[0].name == "bare"


def test_names_from_the_notebook():
    ns = {"get_weather": get_weather, "getweather2": get_weather, "x": 1}
    assert [t.name for t in named("get_weather, ", ns)] == ["get_weather"]
    with pytest.raises(errors.InputError) as info:
        named("get_wether", ns)
    assert "No function named 'get_wether'" in str(info.value) and "get_weather" in str(info.value)
    with pytest.raises(errors.InputError):
        named("x", ns)                                     # not callable
    with pytest.raises(errors.InputError) as info:
        as_tools([get_weather, get_weather])
    assert "Two tools are named get_weather" in str(info.value)


def test_an_unknown_tool_name_is_an_error_result():
    step = Toolbox(as_tools([get_weather])).call("nope", {}, "c1")
    assert step.error == "No tool named 'nope'; the tools are get_weather"
