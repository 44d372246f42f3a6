"""Classic XSS vectors for the untrusted-output tests (kernel, terminal and browser).

Each payload, if it ever ran, would set ``window.__cfai_xss_<n>``: a browser test fails when any
such property exists. Links that would only run when clicked are checked in the DOM instead
(:func:`live_markup` here, ``INERT_JS`` in the browser).
"""
from html.parser import HTMLParser

FLAG = "__cfai_xss_"


def _vectors():
    def js(n):
        return f"window.{FLAG}{n}=1"
    b64 = "PHNjcmlwdD5wYXJlbnQuX19jZmFpX3hzc18xND0xPC9zY3JpcHQ+"   # <script>parent.__cfai_xss_14=1</script>
    return [
        f"<script>{js(1)}</script>",
        f'<img src=x onerror="{js(2)}">',
        f'<svg onload="{js(3)}">',
        f"<svg><script>{js(4)}</script></svg>",
        f'<body onload="{js(5)}">',
        f'<details open ontoggle="{js(6)}"><summary>s</summary></details>',
        f'<iframe srcdoc="<script>parent.{FLAG}7=1</script>"></iframe>',
        f'<iframe src="javascript:parent.{FLAG}8=1"></iframe>',
        f'<a href="javascript:{js(9)}">click 9</a>',
        f"[click 10](javascript:{js(10)})",
        f"[click 11](JaVaScRiPt:{js(11)})",
        f"[click 12](&#106;avascript:{js(12)})",
        f"![img 13](javascript:{js(13)})",
        f"[click 14](data:text/html;base64,{b64})",
        f'<object data="data:text/html,<script>parent.{FLAG}15=1</script>"></object>',
        f'<embed src="javascript:{js(16)}">',
        f'<math><mtext><table><mglyph><style><img src=x onerror="{js(17)}">',
        f'<svg><a xlink:href="javascript:{js(18)}"><text y="20">click 18</text></a></svg>',
        f'<IMG SRC=x OnErRoR="{js(19)}">',
        f"<img src=x onerror=&#119;indow.{FLAG}20=1>",
        f"<style>@import 'javascript:{js(21)}';</style>",
        f'<form action="javascript:{js(22)}"><button>go 22</button></form>',
        f'<input autofocus onfocus="{js(23)}">',
        f'<video><source onerror="{js(24)}"></video>',
        f"```html\n<script>{js(25)}</script>\n<img src=x onerror=\"{js(25)}\">\n```",
        f"<scr<script>ipt>{js(26)}</script>",
        f'<img src="x" onerror="{js(27)}"',
        f'<a href="vbscript:{js(28)}">click 28</a> [click 28b](vbscript:{js(28)})',
        f'<div style="background:url(javascript:{js(29)})">29</div>',
        f'<meta http-equiv="refresh" content="0;url=javascript:{js(30)}">',
        f'<base href="javascript:{js(31)}//">',
        f'![img 32](x" onerror="{js(32)})',
        f'[click 33](https://example.com "t\\" onmouseover=\\"{js(33)}")',
        f"$\\href{{javascript:{js(34)}}}{{click 34}}$",
        f'<noscript><p title="</noscript><img src=x onerror={js(35)}>"></noscript>',
        f'<svg><animate onbegin="{js(36)}" attributeName=x dur=1s></svg>',
        f'<marquee onstart="{js(37)}">37</marquee>',
        f'<x onclick="{js(38)}">click 38</x>',
        f"<javascript:{js(39)}>",
        f"| cell |\n|---|\n| <img src=x onerror={js(40)}> |",
        f"<img src=x onerror={js(41)}//",
        f'<svg><use href="data:image/svg+xml,<svg id=x><script>{js(42)}</script></svg>#x"/></svg>',
    ]


PAYLOADS = _vectors()
ANSWER = "\n\n".join(PAYLOADS)
# what a header can carry (one line, latin-1)
HEADER = " ".join(p for p in PAYLOADS if "\n" not in p)
# terminal escapes: clear the screen, set the window title, move the cursor, 8-bit CSI
ANSI = "\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b[31mred\x9b1mbold\rover\x1b[?1049h"

# ordinary Markdown that must still render
MARKDOWN = ("## Results\n\n| name | value |\n|---|---:|\n| alpha | 1 |\n| beta | 2 |\n\n"
            "```python\nprint('hello')\n```\n\nSee [the docs](https://example.com/docs) and "
            "the formula $e^{i\\pi} + 1 = 0$ inline.")

ALLOWED_TAGS = {"a", "b", "blockquote", "br", "code", "del", "details", "div", "em", "h1", "h2",
                "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "small",
                "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead",
                "tr", "ul"}
SAFE_URL = ("http://", "https://", "mailto:", "#", "data:image/png;", "data:image/jpeg;",
            "data:image/gif;", "data:image/webp;")


class _Live(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED_TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            value = (value or "").strip().lower()
            styled = name == "style" and any(bad in value for bad in ("url(", "expression",
                                                                      "position", "@import"))
            if name.startswith("on") or name in ("srcdoc", "formaction", "action") or styled:
                self.found.append(f"<{tag} {name}>")
            if name in ("href", "src", "xlink:href", "data") and not value.startswith(SAFE_URL):
                self.found.append(f"<{tag} {name}={value[:30]}>")


def live_markup(markup: str) -> list[str]:
    """The tags and attributes of ``markup`` that could run or load something unsafe."""
    parser = _Live()
    parser.feed(markup)
    parser.close()
    return parser.found


def foreign_escapes(text: str, ours=("\x1b[0;31m", "\x1b[0m", "\x1b[2m")) -> list[str]:
    """Control characters in terminal output other than newline, tab and our colour codes."""
    for code in ours:
        text = text.replace(code, "")
    return sorted({repr(c) for c in text if (ord(c) < 32 and c not in "\n\t") or
                   0x7f <= ord(c) < 0xa0})
