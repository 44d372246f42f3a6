"""The shapes of the files we read back (cassette entries, ``cache=`` lines, saved chats),
checked with pydantic, and what is wrong with one as a single line. Extra keys are allowed, so
a file written by a newer version still reads."""
from __future__ import annotations

from functools import cache
from typing import Any, Literal


@cache
def _models():
    from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, StrictStr

    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")

    Number = StrictInt | StrictFloat | None

    class Usage(Open):
        prompt_tokens: Number = None
        completion_tokens: Number = None
        total_tokens: Number = None

    class Call(Open):
        name: StrictStr
        arguments: dict[str, Any]
        id: StrictStr | None = None

    class Request(Open):
        backend: StrictStr | None = None
        model: StrictStr
        body: dict[str, Any]

    class Response(Open):
        chunks: list[StrictStr]
        reasoning: list[StrictStr] | None = None
        tool_calls: list[Call] | None = None
        usage: Usage | None = None
        finish_reason: StrictStr | None = None
        served_by: StrictStr | None = None

    class Entry(Open):
        request: Request
        response: Response

    class Kept(Open):
        key: StrictStr
        text: StrictStr | None = None
        usage: Usage | None = None
        request_id: StrictStr | None = None

    class Message(Open):
        role: Literal["system", "user", "assistant", "tool"]
        content: StrictStr | list[dict[str, Any]] | None = None

    class Turn(Open):
        messages: list[Message]
        answer: StrictStr
        model: StrictStr = ""
        cell_id: StrictStr | None = None
        time: StrictInt | StrictFloat = 0
        reasoning: StrictStr = ""
        steps: list[Message] = []
        interrupted: bool = False

    class Chat(Open):
        system: StrictStr | None = None
        affinity: StrictStr | None = None
        turns: list[Turn] = []

    class Chats(Open):
        cfai_chats: StrictInt
        chats: dict[str, Any]

    return {"entry": Entry, "kept": Kept, "chat": Chat, "chats": Chats}


def problem(kind: str, data) -> str | None:
    """What is wrong with ``data`` as a ``kind`` (entry, kept, chat, chats), or None."""
    from pydantic import ValidationError
    try:
        _models()[kind].model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if not _union_tag(p)) or "it"
        more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        return f"{where}: {first['msg'][:1].lower()}{first['msg'][1:]}{more}"
    return None


def _union_tag(part) -> bool:
    """pydantic names the member of a union it tried (``int``, ``list[str]``): not a place."""
    return isinstance(part, str) and (part in ("int", "float", "str", "bool", "none")
                                      or "[" in part)
