"""What goes into a URL path: checked, then percent-encoded."""
from __future__ import annotations

import re
from urllib.parse import quote

from ...errors import InputError

_MODEL = re.compile(r"^@?[A-Za-z0-9_.:-]+(/[A-Za-z0-9_.:+-]+)*$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")


def model_path(model: str) -> str:
    """A model id for ``/ai/run/{model}``: its slashes kept (as the service's own examples
    write it), no ``.``/``..`` segment, nothing that could change the path."""
    parts = model.split("/")
    if not _MODEL.match(model) or any(p in (".", "..") for p in parts):
        raise InputError(f"{model!r} is not a valid model id",
                         hint="Model ids look like @cf/author/name (see %cfai models)")
    return quote(model, safe="@/")


def account_segment(value: str | None, what: str = "account id") -> str:
    """One path segment (an account id, a gateway name)."""
    value = value or ""
    if not _SEGMENT.match(value) or value in (".", ".."):
        raise InputError(f"The {what} {value!r} is not valid",
                         hint="It may hold letters, digits, '-', '_' and '.' only")
    return quote(value, safe="")
