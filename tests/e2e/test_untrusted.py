"""Model text is data, never code, in a real JupyterLab: 42 XSS payloads sent as an answer, as
response headers, from a crafted cassette, as model descriptions in the live list, as a
server's error message and as the names, models and reasoning of a loaded chat file (a
hostile role is refused when loading), in cells, in the panel, and in the notebook saved,
closed and opened again. Each payload would set ``window.__cfai_xss_<n>`` if it ran; links and handlers that need a click are checked in the DOM."""
import json

from cfai_magic.apiserver import search_item
from cfai_magic.models import BUILT_IN
from cfai_magic.testing import Reply
from labkit import cell, executed, open_notebook, run_cell, wait_until, write_notebook
from payloads import ANSWER, FLAG, HEADER, MARKDOWN

HOSTILE = ANSWER + "\n\n" + MARKDOWN
HEADERS = {"X-Cfai-Backend": HEADER, "X-Cfai-Served-By": HEADER}
GLM = "@cf/zai-org/glm-4.7-flash"

# What ran (window flags) and what could run or load (tags, handlers, URLs) under `selector`;
# MathJax's own elements are checked for handlers and URLs only.
INERT_JS = """([selector, flag]) => {
  const ran = Object.keys(window).filter(k => k.startsWith(flag));
  const banned = new Set(['script', 'iframe', 'object', 'embed', 'style', 'form', 'base',
    'meta', 'link', 'frame', 'frameset', 'svg', 'math', 'video', 'audio', 'source', 'marquee',
    'noscript', 'x', 'body', 'template']);
  const safeUrl = /^(https?:|mailto:|#|data:image\\/(png|jpeg|gif|webp);)/i;
  const found = [], textLinks = [];
  for (const root of document.querySelectorAll(selector)) {
    for (const el of root.querySelectorAll('*')) {
      const tag = el.tagName.toLowerCase();
      // JupyterLab's own text renderer links URLs in text outputs (data: included): clicked
      // by the test, never counted as markup of ours
      if (tag === 'a' && el.closest('.jp-RenderedText') && /^data:/i.test(el.getAttribute('href'))
          && el.target === '_blank' && !el.closest('.cfai-md')) { textLinks.push(el.href); continue; }
      const inMath = el.closest('mjx-container') !== null;
      if (!inMath && banned.has(tag)) found.push('<' + tag + '>');
      for (const a of el.attributes) {
        const v = a.value.trim();
        if (a.name.startsWith('on')) found.push(tag + '[' + a.name + ']');
        if (['srcdoc', 'formaction', 'action'].includes(a.name)) found.push(tag + '[' + a.name + ']');
        if (['href', 'src', 'xlink:href', 'data'].includes(a.name) && v && !safeUrl.test(v))
          found.push(tag + '[' + a.name + '=' + v.slice(0, 40) + ']');
        if (a.name === 'style' && /url\\(|expression|@import/i.test(v)) found.push(tag + '[style]');
      }
    }
  }
  return {ran, found, textLinks, roots: document.querySelectorAll(selector).length};
}"""

OUTPUTS = ".jp-NotebookPanel .jp-OutputArea-output"
PANEL = ".cfai-panel .cfai-transcript, .cfai-panel .cfai-status, .cfai-panel .cfai-error, " \
        ".cfai-panel .cfai-limits"


def inert(page, selector: str) -> None:
    seen = page.evaluate(INERT_JS, [selector, FLAG])
    assert seen["roots"] > 0, selector
    assert seen["ran"] == [], seen["ran"]
    assert seen["found"] == [], seen["found"]
    if seen["textLinks"]:
        clicked_text_links_run_nothing(page)


def clicked_text_links_run_nothing(page) -> None:
    """Click every data: link JupyterLab made in a text output: the browser opens no page
    that runs anything (Chromium refuses top-level navigation to data: URLs from a link)."""
    context = page.context
    before = set(context.pages)
    links = page.locator(".jp-RenderedText a[href^='data:']")
    for i in range(links.count()):
        links.nth(i).click(modifiers=[])
    page.wait_for_timeout(1000)
    for other in set(context.pages) - before:
        assert not other.url.startswith("data:text/html"), other.url
        assert other.evaluate(f"Object.keys(window).filter(k => k.startsWith('{FLAG}'))") == []
        other.close()
    assert page.evaluate(f"Object.keys(window).filter(k => k.startsWith('{FLAG}'))") == []


def markdown_renders(out) -> None:
    """The ordinary Markdown of the answer: a table, a fenced code block, a link, math."""
    table = out.locator("table").filter(has_text="alpha")
    assert table.locator("td").all_inner_texts() == ["alpha", "1", "beta", "2"]
    assert out.locator("pre code").filter(has_text="print('hello')").count() == 1
    assert out.locator("a[href='https://example.com/docs']").inner_text() == "the docs"
    wait_until(lambda: out.locator("mjx-container").count() >= 1, timeout=20)   # MathJax ran
    assert "<script>" in out.inner_text()              # raw HTML shown as text, not dropped


def test_payloads_are_inert_everywhere(page, lab, fake, artifacts):
    root = lab["root"]
    (root / "hostile-cassette.json").write_text(json.dumps({"cfai_cassette": 1, "interactions": [
        {"request": {"backend": HEADER, "model": "@cf/meta/llama-2-7b-chat-fp16",
                     "body": {"prompt": "recorded"}},
         "response": {"chunks": [HOSTILE], "usage": None, "served_by": HEADER}}]}))
    (root / "hostile-chats.json").write_text(json.dumps({"cfai_chats": 1, "chats": {"loaded": {
        "turns": [{"messages": [{"role": "user", "content": HOSTILE}], "answer": HOSTILE,
                   "reasoning": HEADER, "model": HEADER}]},
        HEADER: {"turns": [{"messages": [{"role": HEADER, "content": HOSTILE}],   # refused,
                            "answer": HOSTILE}]}}}))                               # named
    saved_models = fake.models
    fake.models = [search_item(m, description=HEADER) for m in BUILT_IN]
    try:
        fake.enqueue(Reply(text=HOSTILE, reasoning=HEADER, dialect="chat", headers=HEADERS,
                           drip=0.01))
        fake.enqueue(status=400, code=5004, message=HEADER)
        name = write_notebook(root, "hostile.ipynb", [
            "%load_ext cfai_magic",
            f"%%cfai -m {GLM}\nshow me",                          # 1: answer, headers
            "%%cfai -m llama2\nfail",                              # 2: error message
            "%cfai models",                                       # 3: live descriptions
            "%cfai replay hostile-cassette.json",                 # 4
            "%%cfai -m llama2 --once\nrecorded",                  # 5: a crafted cassette
            "%cfai cassette off\n%cfai load hostile-chats.json",  # 6
            "%cfai panel --chat loaded",                          # 7: roles, then live
        ])
        open_notebook(page, lab, name)
        for i in range(8):
            run_cell(page, i)
            wait_until(lambda i=i: executed(page, i), timeout=30)
        out = cell(page, 1).locator(".jp-OutputArea-output").last
        wait_until(lambda: "✓" in out.inner_text())
        markdown_renders(out)
        assert "onerror" in cell(page, 2).inner_text()          # the error line, as text
        assert cell(page, 3).locator("table.cfai-models").count() == 1
        markdown_renders(cell(page, 5).locator(".jp-OutputArea-output").last)
        panel = page.locator(".cfai-panel")
        panel.wait_for()
        wait_until(lambda: panel.locator(".cfai-message-assistant").count() >= 1)
        markdown_renders(panel.locator(".cfai-message-assistant").first)   # the loaded chat
        assert "onerror" in panel.locator(".cfai-transcript").inner_text()  # its role, as text
        inert(page, PANEL)
        fake.enqueue(Reply(text=HOSTILE, reasoning=HEADER, dialect="chat", headers=HEADERS))
        panel.locator("button.cfai-new-chat").click()      # the loaded roles stay in the page
        wait_until(lambda: panel.locator(".cfai-transcript .cfai-message-user").count() == 0)
        panel.locator(".cfai-input input").fill("and again")
        panel.locator("button.cfai-send").click()
        wait_until(lambda: panel.locator(".cfai-status").inner_text().startswith("✓"))
        fake.enqueue(status=400, code=5004, message=HEADER)
        panel.locator(".cfai-input input").fill("fail")
        panel.locator("button.cfai-send").click()
        wait_until(lambda: "InvalidRequest" in panel.locator(".cfai-error").inner_text())
        markdown_renders(panel.locator(".cfai-message-assistant").filter(has_text="alpha").last)
        page.wait_for_timeout(500)          # let anything that could fire (autofocus) fire
        inert(page, OUTPUTS)
        inert(page, PANEL)
        assert "onerror" in panel.locator(".cfai-limits").inner_text()    # a description
        page.screenshot(path=str(artifacts / "7a-hostile-live.png"), full_page=True)
        # saved, closed, opened again: the same inert output
        page.keyboard.press("Control+s")
        wait_until(lambda: "onerror" in (root / name).read_text() and
                   '"text/html"' in (root / name).read_text(), timeout=20)
        saved = json.loads((root / name).read_text())
        assert all("text/markdown" not in o.get("data", {}) for c in saved["cells"]
                   for o in c.get("outputs", []))
        page.goto("about:blank")
        open_notebook(page, lab, name)
        again = cell(page, 1).locator(".jp-OutputArea-output").last
        wait_until(lambda: "✓" in again.inner_text())
        markdown_renders(again)
        markdown_renders(cell(page, 5).locator(".jp-OutputArea-output").last)
        page.wait_for_timeout(500)
        inert(page, OUTPUTS)
        page.screenshot(path=str(artifacts / "7b-hostile-reopened.png"), full_page=True)
    finally:
        fake.models = saved_models
        fake.reset()
