"""What the service checks in a request body, for the fake and the local backend alike.

Messages come in every shape ``/ai/run`` and ``/ai/v1`` accept: ``content`` as a string, as a
list of parts (``{"type": "text", "text"}``, ``{"type": "image_url", "image_url": {"url"}}``),
or ``null`` beside an assistant's ``tool_calls``; ``tool`` messages answer a call by
``tool_call_id``. A refusal is an :class:`~cfai_magic.apiserver.ApiError` in the service's
words where they are known (``AiError: Bad input: ...``, code 5006, is Cloudflare's schema
refusal; the wording of each reason is ours).
"""
from __future__ import annotations

from .messages import text_of  # noqa: F401 (the servers read message text from here)

ROLES = ("system", "developer", "user", "assistant", "tool")
PART_TYPES = ("text", "image_url")


def _bad(message: str):
    from .apiserver import ApiError
    return ApiError(400, 5006, f"AiError: Bad input: {message}")


def _invalid(message: str):
    from .apiserver import ApiError
    return ApiError(400, 5004, f"Invalid input: {message}")


def check_body(body, kind: str = "run", queued: bool = False) -> None:
    """The checks made on every run body (``queued``: the Batch API's, a list of ``requests``
    each checked as a run body, or a ``request_id``)."""
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object")
    if queued:
        if isinstance(body.get("request_id"), str):
            return
        items = body.get("requests")
        if not isinstance(items, list) or not items:
            raise _invalid("give requests (a list) or a request_id")
        for item in items:
            check_body({k: v for k, v in item.items() if k != "external_reference"}
                       if isinstance(item, dict) else item)
        return
    if kind == "chat":
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise _invalid("model is required")
        if "messages" not in body:
            raise _invalid("messages is required")
    has_prompt, has_messages = "prompt" in body, "messages" in body
    if has_prompt == has_messages:
        raise _invalid("give exactly one of prompt or messages")
    if has_prompt and not isinstance(body["prompt"], str):
        raise _invalid("prompt must be a string")
    if has_messages:
        check_messages(body["messages"])
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or max_tokens < 1):
        raise _invalid("max_tokens must be a positive integer")
    options = body.get("options")
    if options is not None and not isinstance(options, dict):
        raise _bad("Type mismatch of '/options', not an object")
    if isinstance(options, dict) and not isinstance(options.get("rejectIfBusy", False), bool):
        raise _bad("Type mismatch of '/options/rejectIfBusy', not a boolean")
    if "lora" in body and not isinstance(body["lora"], str):
        raise _bad("Type mismatch of '/lora', not a string")
    if "raw" in body and body["raw"] not in (True, False, "true", "false"):
        raise _bad("Type mismatch of '/raw', not a boolean")   # (LoRA's docs send "true")


def check_messages(messages) -> None:
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages must be a non-empty list")
    for i, m in enumerate(messages):
        where = f"/messages/{i}"
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise _invalid(f"{where} needs a role")
        if m["role"] not in ROLES:
            raise _bad(f"'{where}/role' must be one of {', '.join(ROLES)}")
        content = m.get("content")
        calls = m.get("tool_calls")
        if content is None:
            if not (m["role"] == "assistant" and calls):
                raise _bad(f"'{where}/content' may be null only beside tool_calls")
        elif isinstance(content, list):
            for j, part in enumerate(content):
                _check_part(part, f"{where}/content/{j}")
        elif not isinstance(content, str):
            raise _bad(f"Type mismatch of '{where}/content', not a string or a list of parts")
        if calls is not None:
            if m["role"] != "assistant" or not isinstance(calls, list):
                raise _bad(f"'{where}/tool_calls' belongs to an assistant message, as a list")
            for j, call in enumerate(calls):
                fn = call.get("function", call) if isinstance(call, dict) else None
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                    raise _bad(f"'{where}/tool_calls/{j}' needs a function name")
        if m["role"] == "tool" and not isinstance(m.get("tool_call_id") or m.get("name"), str):
            raise _bad(f"'{where}' (a tool result) needs the tool_call_id it answers")


def _check_part(part, where: str) -> None:
    if not isinstance(part, dict) or part.get("type") not in PART_TYPES:
        raise _bad(f"'{where}/type' must be one of {', '.join(PART_TYPES)}")
    if part["type"] == "text" and not isinstance(part.get("text"), str):
        raise _bad(f"Type mismatch of '{where}/text', not a string")
    if part["type"] == "image_url":
        url = (part.get("image_url") or {}).get("url") if isinstance(part.get("image_url"),
                                                                       dict) else None
        if not isinstance(url, str) or not url:
            raise _bad(f"'{where}/image_url/url' is required")


def images_in(body: dict) -> list[str]:
    """Where the body has image parts (``/messages/i/content/j``)."""
    found = []
    for i, m in enumerate(body.get("messages") or []):
        content = m.get("content") if isinstance(m, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else ()):
            if isinstance(part, dict) and part.get("type") == "image_url":
                found.append(f"/messages/{i}/content/{j}")
    if body.get("image") is not None:
        found.append("/image")
    return found


def refuse_images(body: dict, model: str, why: str = "") -> None:
    """400 for a model that cannot see, naming the first image part."""
    where = images_in(body)
    if where:
        raise _bad(f"{model} takes no image input (an image at '{where[0]}'){why}")


def check_limits(spec, body: dict, n_prompt: int, n_ctx: int | None = None,
                 stream: bool = False) -> int:
    """The max_tokens to generate (the model's default when none is given, fitted to the
    context), or an ApiError where the service refuses: over the sequence limit, or input and
    answer over the context."""
    from .apiserver import ApiError
    given = body.get("max_tokens")
    default = (spec.stream_max_tokens if stream and spec.stream_max_tokens
               else spec.default_max_tokens)
    max_tokens = given or default
    if given and spec.sequence_tokens and given > spec.sequence_tokens:
        raise ApiError(400, 5004, f"Invalid input: max_tokens {given} is over the "
                                  f"{spec.sequence_tokens}-token limit of {spec.id}")
    context = min(c for c in (spec.context_tokens, n_ctx) if c) if (spec.context_tokens or
                                                                    n_ctx) else None
    if context is None:
        return max_tokens
    if not given:                               # a default never refuses: it fits what is left
        max_tokens = max(1, min(max_tokens, context - n_prompt))
    if n_prompt + max_tokens > context:
        raise ApiError(413, 3006, f"Request too large: {n_prompt} input tokens plus max_tokens "
                                  f"{max_tokens} exceed the {context}-token context of {spec.id}")
    return max_tokens
