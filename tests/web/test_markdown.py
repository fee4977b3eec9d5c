"""Model output is rendered as Markdown with anything executable left inert."""

import pytest

from appliance.web.markdown import render

UNSAFE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '<a href="#" onclick="alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "![pic](javascript:alert(1))",
    '<iframe src="http://example.com"></iframe>',
]


@pytest.mark.parametrize("text", UNSAFE)
def test_unsafe_markup_stays_inert(text: str) -> None:
    html = render(text)
    assert "<script" not in html
    assert "<img src=x" not in html
    assert "<iframe" not in html
    assert '<a href="#" onclick' not in html
    assert 'href="javascript:' not in html
    assert 'src="javascript:' not in html


def test_tags_are_shown_as_text() -> None:
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in render("<script>alert(1)</script>")


def test_code_blocks_and_formatting() -> None:
    html = render("**bold** and `x`\n\n```python\nprint('<b>')\n```\n")
    assert "<strong>bold</strong>" in html
    assert '<pre><code class="language-python">' in html
    assert "print('&lt;b&gt;')" in html


def test_images_are_not_rendered_so_nothing_is_fetched_from_elsewhere() -> None:
    html = render("![logo](https://example.com/track.png?q=secret)")
    assert "<img" not in html
