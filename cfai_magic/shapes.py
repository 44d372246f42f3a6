"""The shapes of the files we read back (cassette entries, ``cache=`` lines, saved chats),
checked with pydantic, and what is wrong with one as a single line. Extra keys are allowed, so
a file written by a newer version still reads."""
from __future__ import annotations

from functools import cache
from typing import Any, Literal, Optional, Union


@cache
def _models():
    from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, StrictStr

    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")

    Number = Optional[Union[StrictInt, StrictFloat]]

    class Usage(Open):
        prompt_tokens: Number = None
        completion_tokens: Number = None
        total_tokens: Number = None

    class Call(Open):
        name: StrictStr
        arguments: dict[str, Any]
        id: Optional[StrictStr] = None

    class Request(Open):
        backend: Optional[StrictStr] = None
        model: StrictStr
        body: dict[str, Any]

    class Response(Open):
        chunks: list[StrictStr]
        reasoning: Optional[list[StrictStr]] = None
        tool_calls: Optional[list[Call]] = None
        usage: Optional[Usage] = None
        finish_reason: Optional[StrictStr] = None
        served_by: Optional[StrictStr] = None

    class Entry(Open):
        request: Request
        response: Response

    class Kept(Open):
        key: StrictStr
        text: Optional[StrictStr] = None
        usage: Optional[Usage] = None
        request_id: Optional[StrictStr] = None

    class Message(Open):
        role: Literal["system", "user", "assistant", "tool"]
        content: Optional[Union[StrictStr, list[dict[str, Any]]]] = None

    class Turn(Open):
        messages: list[Message]
        answer: StrictStr
        model: StrictStr = ""
        cell_id: Optional[StrictStr] = None
        time: Union[StrictInt, StrictFloat] = 0
        reasoning: StrictStr = ""
        steps: list[Message] = []
        interrupted: bool = False

    class Chat(Open):
        system: Optional[StrictStr] = None
        affinity: Optional[StrictStr] = None
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
