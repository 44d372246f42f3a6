"""The one door for untrusted text.

Everything that came from a model, a server (bodies, headers, error messages), a cassette, a
cache or chat file, or the live model list reaches HTML, a widget or a terminal through one of:

- :func:`markdown`: an answer as HTML. Markdown is rendered by markdown-it-py with raw HTML
  off (so ``<script>`` shows as text), math is kept for JupyterLab's MathJax, and the result is
  cleaned by nh3 with an allowlist: no script, no event handler, no ``<iframe>``, ``<object>``,
  ``<style>`` or ``<form>``, links only to ``http(s):``/``mailto:``, images only from
  ``http(s):`` or ``data:image/{png,jpeg,gif,webp}``.
- :func:`escape`: text for an HTML element or attribute (labels, headers, ids, errors).
- :func:`plain`: text for a terminal or ``text/plain``: control characters other than newline
  and tab removed, so no escape sequence can rewrite the screen.

Trusted markup (our own footer, the reasoning block) is written by our code around escaped
values; it never carries untrusted text unescaped.
"""
from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

# C0 controls but tab and newline, DEL, and the C1 controls (a terminal reads 0x9b as CSI);
# translate is fastest on ASCII text, the expression on any other (14x, measured at 10 MB)
_CONTROLS = dict.fromkeys([*range(0x09), *range(0x0b, 0x20), 0x7f, *range(0x80, 0xa0)])
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LANGUAGE = re.compile(r"language-[\w+#.-]{1,40}")   # the class markdown-it gives code
_DATA_IMAGE = ("data:image/png;", "data:image/jpeg;", "data:image/gif;", "data:image/webp;")
LINK_SCHEMES = ("http", "https", "mailto")

TAGS = {"a", "b", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5",
        "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup",
        "table", "tbody", "td", "th", "thead", "tr", "ul"}
ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "code": {"class"},
              "ol": {"start"}, "th": {"style"}, "td": {"style"}, "span": {"class"},
              "div": {"class"}}
MATH_CLASSES = {"cfai-math", "mathjax_process", "tex2jax_process"}


def plain(text) -> str:
    """``text`` for a terminal: control characters other than ``\\n`` and ``\\t`` removed
    (``\\r\\n`` becomes ``\\n``)."""
    text = text if isinstance(text, str) else str(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return text.translate(_CONTROLS) if text.isascii() else _CONTROL.sub("", text)


def escape(text) -> str:
    """``text`` as HTML text (quotes escaped too, so it may go into an attribute)."""
    return html.escape(plain(text), quote=True)


def _math(display: bool):
    """A markdown-it render rule for math as MathJax reads it in JupyterLab: its delimiters
    around escaped text, in an element MathJax processes (the rest of an answer is marked for
    it to ignore, so a price like $5 stays text)."""
    mark = "$$" if display else "$"

    def rule(self, tokens, idx, options, env) -> str:
        content = html.escape(tokens[idx].content.strip())
        return (f'<span class="cfai-math mathjax_process tex2jax_process">'
                f'{mark}{content}{mark}</span>')
    return rule


def _allowed(tag: str, attr: str, value: str) -> str | None:
    """nh3's attribute filter: only the URL schemes and classes listed above survive."""
    if attr == "href":
        scheme = urlsplit(value).scheme.lower()
        return value if scheme in LINK_SCHEMES or (not scheme and value.startswith("#")) \
            else None
    if attr == "src":
        if value.lower().startswith(_DATA_IMAGE):
            return value
        return value if urlsplit(value).scheme.lower() in ("http", "https") else None
    if attr == "class":
        kept = [c for c in value.split() if (tag == "code" and _LANGUAGE.fullmatch(c))
                or (tag in ("span", "div") and c in MATH_CLASSES)]
        return " ".join(kept) or None
    return value


class _Renderer:
    """markdown-it and nh3, set up once (both on first use: %load_ext stays fast)."""

    def __init__(self):
        import nh3
        from markdown_it import MarkdownIt
        from mdit_py_plugins.dollarmath import dollarmath_plugin
        md = MarkdownIt("commonmark", {"html": False, "typographer": False})
        md.enable(["table", "strikethrough"])
        dollarmath_plugin(md, allow_labels=False, allow_space=False, allow_digits=False,
                          double_inline=True)
        for name, display in (("math_inline", False), ("math_inline_double", True),
                              ("math_block", True)):
            md.add_render_rule(name, _math(display))
        self.md = md
        self.cleaner = nh3.Cleaner(
            tags=TAGS, attributes=ATTRIBUTES, attribute_filter=_allowed,
            clean_content_tags={"script", "style"},
            url_schemes={"http", "https", "mailto", "data"},
            filter_style_properties={"text-align"},
            link_rel="noopener noreferrer nofollow", strip_comments=True)

    def html(self, text: str) -> str:
        return self.cleaner.clean(self.md.render(plain(text)))


_renderer: _Renderer | None = None


def clean(markup: str) -> str:
    """HTML from anywhere, reduced to what :func:`markdown` lets through."""
    return _get().cleaner.clean(markup)


def markdown(text) -> str:
    """An untrusted Markdown answer as inert HTML; MathJax typesets its math only."""
    if not text:
        return ""
    return f'<div class="cfai-md mathjax_ignore tex2jax_ignore">{_get().html(str(text))}</div>'


def _get() -> _Renderer:
    global _renderer
    if _renderer is None:
        _renderer = _Renderer()
    return _renderer
