"""The rows of a batch, and the shape its answers come back in. Pure; pandas stays optional.

Rows are a list of strings (the field ``{row}``), a list of dicts (fields by key), a pandas
Series (``{row}``, and its name) or a DataFrame (fields by column name, ``{row}`` the whole row).
Answers come back in input order: a list, or a Series / DataFrame on the input's index.
"""
from __future__ import annotations

from collections.abc import Mapping

from ..errors import InputError


def _pandas(obj) -> str | None:
    """``"Series"`` or ``"DataFrame"`` for a pandas object, else None (pandas not imported)."""
    kind = type(obj).__name__
    return kind if type(obj).__module__.startswith("pandas") and kind in (
        "Series", "DataFrame") else None


class Rows:
    def __init__(self, rows):
        self.source = rows
        self.kind = _pandas(rows)
        if self.kind == "DataFrame":
            self.names = [str(c) for c in rows.columns]
            self._items = rows.to_dict("records")
        elif self.kind == "Series":
            self.names = ["row"] + ([str(rows.name)] if rows.name is not None else [])
            self._items = rows.tolist()
        elif isinstance(rows, (list, tuple)):
            self._items = list(rows)
            dicts = [isinstance(r, Mapping) for r in self._items]
            if any(dicts) and not all(dicts):
                raise InputError("The rows mix dicts and other values",
                                 hint="Give a list of strings, a list of dicts, a Series or a "
                                      "DataFrame")
            self.names = sorted({str(k) for r in self._items for k in r}) if any(dicts) \
                else ["row"]
        else:
            raise InputError(f"Cannot run over a {type(rows).__name__}",
                             hint="Give a list of strings, a list of dicts, a pandas Series "
                                  "or a DataFrame")

    def __len__(self) -> int:
        return len(self._items)

    def fields(self, i: int) -> dict:
        """The names a template can use for row ``i``."""
        item = self._items[i]
        if isinstance(item, Mapping):
            return {"row": item, **{str(k): v for k, v in item.items()}}
        out = {"row": item}
        if self.kind == "Series" and len(self.names) > 1:
            out[self.names[1]] = item
        return out

    def shape(self, values: list):
        """The answers in input order: a Series on the input's index for pandas input."""
        if self.kind is None:
            return values
        import pandas as pd
        return pd.Series(values, index=self.source.index, dtype=object)

    def columns(self, objects: list, names: list[str]):
        """Parsed answers as new columns (``names``) on the input's index."""
        import pandas as pd
        index = self.source.index if self.kind else None
        records = [_record(o) for o in objects]
        frame = pd.DataFrame.from_records(records, index=index, columns=names)
        return frame


def _record(obj) -> dict:
    if obj is None:
        return {}
    if hasattr(obj, "model_dump"):          # a pydantic object
        return obj.model_dump()
    return obj if isinstance(obj, dict) else {"value": obj}
