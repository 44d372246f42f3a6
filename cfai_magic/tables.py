"""The model table of ``%cfai models``: HTML in Jupyter, aligned text in a terminal."""
from __future__ import annotations

from . import safe
from .models import LOCAL_MODEL

COLUMNS = ("", "model", "context", "$/M in", "$/M out", "requests", "flags", "status",
           "source")


def _price(value) -> str:
    return "-" if value is None else f"{value:g}"


class ModelTable:
    """Rows of the catalog; ``current`` is marked with ``*``."""

    def __init__(self, models, current: str = ""):
        models = list(models)
        self.descriptions = [m.description for m in models]     # the id's tooltip in HTML
        self.rows = [("*" if m.id == current else "", m.id,
                      f"{m.context_tokens:,}" if m.context_tokens else "?",
                      _price(m.price_in), _price(m.price_out),
                      "-" if m.id == LOCAL_MODEL else m.limit(), ", ".join(m.flags) or "-",
                      m.status() or "-", m.source) for m in models]

    def __repr__(self) -> str:
        if not self.rows:
            return "No model matches."
        widths = [max(len(str(r[i])) for r in (COLUMNS, *self.rows)) for i in range(len(COLUMNS))]
        right = {2, 3, 4}

        def line(row):
            return "  ".join(str(v).rjust(w) if i in right else str(v).ljust(w)
                             for i, (v, w) in enumerate(zip(row, widths))).rstrip()
        return safe.plain("\n".join([line(COLUMNS), *map(line, self.rows)]))

    def _repr_html_(self) -> str:
        if not self.rows:
            return "<p>No model matches.</p>"
        head = "".join(f"<th>{safe.escape(c)}</th>" for c in COLUMNS)
        body = "".join(
            "<tr>" + "".join(f'<td title="{safe.escape(about)}">{safe.escape(v)}</td>' if i == 1
                             else f"<td>{safe.escape(v)}</td>" for i, v in enumerate(row))
            + "</tr>" for row, about in zip(self.rows, self.descriptions))
        return (f'<table class="cfai-models"><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>")
