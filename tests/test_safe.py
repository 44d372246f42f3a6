"""The one door for untrusted text (safe.py): inert HTML, Markdown that still renders, and
terminal text without escape sequences."""
import pytest

from cfai_magic import safe
from payloads import ANSI, ANSWER, HEADER, MARKDOWN, PAYLOADS, foreign_escapes, live_markup


@pytest.mark.parametrize("payload", PAYLOADS, ids=[f"p{i + 1}" for i in range(len(PAYLOADS))])
def test_each_payload_comes_out_inert(payload):
    shown = safe.markdown(payload)
    assert live_markup(shown) == [], shown


def test_all_payloads_at_once_and_in_every_other_door():
    assert live_markup(safe.markdown(ANSWER)) == []
    assert live_markup(safe.escape(HEADER)) == []
    assert "<" not in safe.escape(HEADER) and '"' not in safe.escape(HEADER)
    assert live_markup(safe.clean(ANSWER)) == []         # raw HTML from anywhere, cleaned


def test_raw_html_is_shown_as_text_not_dropped():
    shown = safe.markdown("Hi <script>alert(1)</script> there")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown


def test_markdown_still_renders():
    shown = safe.markdown(MARKDOWN)
    assert "<h2>Results</h2>" in shown
    assert "<table>" in shown and '<td style="text-align:right">1</td>' in shown
    assert "<pre><code class=\"language-python\">print('hello')\n</code></pre>" in shown
    assert '<a href="https://example.com/docs" rel="noopener noreferrer nofollow">the docs</a>' \
        in shown
    assert '<span class="cfai-math mathjax_process tex2jax_process">$e^{i\\pi} + 1 = 0$</span>' \
        in shown
    assert shown.startswith('<div class="cfai-md mathjax_ignore tex2jax_ignore">')


def test_images_by_https_and_data_url_only():
    shown = safe.markdown("![a](https://example.com/a.png) ![b](data:image/png;base64,iVBO) "
                          "![c](data:image/svg+xml;base64,PHN2Zz4=) ![d](file:///etc/passwd)")
    assert '<img src="https://example.com/a.png" alt="a">' in shown
    assert '<img src="data:image/png;base64,iVBO" alt="b">' in shown
    assert shown.count("<img") == 2 and "![c](data:image/svg+xml" in shown   # left as text


def test_prices_are_not_math_but_math_is():
    shown = safe.markdown("It costs $5 and $10, and $x^2$ is math.")
    assert "It costs $5 and $10" in shown and shown.count("cfai-math") == 1


def test_plain_removes_control_characters_but_newline_and_tab():
    text = safe.plain(f"a\tb\r\nc{ANSI}d\x00e\x7f")
    assert foreign_escapes(text) == []
    assert text.startswith("a\tb\nc") and "red" in text and "pwned" in text   # the words stay


def test_escape_is_for_attributes_too():
    assert safe.escape('"><b x=\'1\'>\x1b[2J') == "&quot;&gt;&lt;b x=&#x27;1&#x27;&gt;[2J"
