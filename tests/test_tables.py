"""tables.py alone: the %cfai models table as aligned text and as escaped HTML."""
from cfai_magic.models import Model
from cfai_magic.tables import ModelTable

MODELS = [Model("@cf/a/small", context_tokens=8000, price_in=0.1, price_out=0.2, tools=True),
          Model("@cf/b/<b>bold</b>", description='"><img src=x onerror=alert(1)>'),
          Model("@cf/c/frontier", rate=20, rate_credits=50, lora=True)]


def test_text_is_aligned_with_the_current_model_marked():
    lines = repr(ModelTable(MODELS, current="@cf/a/small")).splitlines()
    assert lines[0].split() == ["model", "context", "$/M", "in", "$/M", "out", "requests",
                                "flags", "status", "source"]
    assert lines[1].split()[:7] == ["*", "@cf/a/small", "8,000", "0.1", "0.2", "300/min",
                                    "tools"]
    assert "20/min (50 with gateway credits)  lora" in lines[3]      # its own limit, in words
    assert lines[2].split()[:4] == ["@cf/b/<b>bold</b>", "?", "-", "-"]
    # right-aligned numbers: each column ends where its heading ends
    assert lines[1].index("8,000") + 5 == lines[0].index("context") + len("context")


def test_html_escapes_ids_and_descriptions():
    html = ModelTable(MODELS)._repr_html_()
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<img" not in html and "onerror=alert(1)&gt;" in html


def test_no_rows_says_so():
    assert repr(ModelTable([])) == "No model matches."
    assert ModelTable([])._repr_html_() == "<p>No model matches.</p>"
