"""A streamed answer's HTML in parts: joined, always the whole text's render; each render
parses the last blocks only, however long the answer grows."""

from __future__ import annotations

import random
from collections.abc import Iterable

from appliance.web.markdown import StreamedHtml, render

HOSTS = ("wiki.example.com",)

# Answers as a model may write them, with the cases where a block seems done and is not.
ANSWERS = [
    "Intro.\n\n- a\n- b\n\n- c, the list is loose now\n\nAfter the list.\n\n1. one\n\n2. two\n"
    "3. three\n\n2\n\nEnd.",
    "# Title\ntext under it\n\n```python\nx = 1\n\n\ny = 2\n```\n\nSee [1].\n\n    code\n\n"
    "    more of it\n\nplain\n\n[1]: /view?path=a.md\n\nand [1] again",
    "| a | b |\n|---|---|\n| 1 | 2 |\n\n> quote\n\n> another\n>\n> more\n\nSetext\n---\n\n"
    "* x\n\n  continued\n\n* y\n\n***\n\n~~gone~~ **bold** [out](https://evil.example/?q=1) "
    "[in](https://wiki.example.com/p) <https://evil.example/a>",
    "1. a\n\n10) b\n\n11) c\n\n-x\n\n+ p\n\n+ q\n\n````\n```\nnot closed\n\n````\n\n~~~\n"
    "open fence\n\nstill in it",
    "[foo]\n\ntext [bar][] and [baz][foo]\n\n[foo]: /a 'title'\n\n[bar]:\n/b\n\"t\"\n\n"
    "[foo] again\n\n[foo]: /c\n\n[FOO]\n",
    "Para\n   \n\t\nafter blanks\n\n  - nested\n    - deeper\n\n      deep para\n\n  back\n\n"
    "<div>html is off</div>\n\n<script>x</script>\n\nend\n",
    "Lines\r\nwith\r\n\r\ncarriage returns\r\n\r\n- a\r\n\r\n- b",
    "> a\n\nb\n\n> c\nlazy\n\n- x\ny lazy\n\nz\n\n| h |\n| - |\n| r |\nrow?\n\nafter 😀",
]

# Lines to make answers of, for the randomized check.
LINES = [
    "",
    "",
    "",
    "text",
    "words [a] here",
    "- item",
    "  - sub",
    "    indented",
    "* star",
    "1. one",
    "2. two",
    "2",
    "3) three",
    "> quote",
    ">",
    "```",
    "```js",
    "~~~",
    "# h",
    "---",
    "===",
    "| a | b |",
    "|---|---|",
    "| 1 | 2 |",
    "[a]: /x",
    "[a]: /y 'ti",
    "[b]:",
    "/z",
    "[B]",
    "[a][b]",
    "\t- tab",
    "   ",
    "-",
    "- [a]",
    "  text",
    "**bold",
    "[x](/p)",
    "[x](https://evil.example/)",
    "  1. nested",
    "- > quoted",
    "> - item",
    "  ```",
    "a | b",
]


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - cuts test text, not secrets


def pieces(text: str, rng: random.Random, longest: int = 8) -> list[str]:
    """`text` cut as tokens may cut it."""
    cuts, at = [], 0
    while at < len(text):
        size = rng.randint(1, longest)
        cuts.append(text[at : at + size])
        at += size
    return cuts


def streamed(chunks: Iterable[str], every: float = 1.0, seed: int = 0) -> list[tuple[str, str]]:
    """(text so far, the page's HTML: the parts joined) after each render."""
    rng, html, text = seeded(seed), StreamedHtml(HOSTS), ""
    parts: list[str] = []
    shown: list[tuple[str, str]] = []
    for chunk in chunks:
        html.add(chunk)
        text += chunk
        if rng.random() < every:
            for part, changed in html.render():
                del parts[part:]
                parts.append(changed)
            shown.append((text, "".join(parts)))
    return shown


def test_the_parts_are_the_whole_answers_render_at_every_step() -> None:
    rng = seeded(1)
    for answer in ANSWERS:
        for chunks in [list(answer), *(pieces(answer, rng) for _ in range(10))]:
            shown = streamed(chunks)
            assert shown[-1][0] == answer
            for text, html in shown:
                assert html == render(text, HOSTS), text


def test_random_answers_render_the_same_in_parts() -> None:
    rng = seeded(2)
    for seed in range(300):
        answer = "\n".join(rng.choice(LINES) for _ in range(rng.randint(3, 25)))
        for text, html in streamed(pieces(answer, rng, 10), every=0.7, seed=seed):
            assert html == render(text, HOSTS), text


def long_answer(sections: int) -> str:
    return "".join(
        f"## Part {n}\n\nSome text about part {n}, with **bold** and `code` [{n}].\n\n"
        f"- one thing\n- another\n\n```python\nprint({n})\n\nprint({n + 1})\n```\n\n"
        for n in range(sections)
    )


def test_a_long_answer_costs_each_render_its_last_blocks_only() -> None:
    answer = long_answer(200)
    html, parsed = StreamedHtml(), list[int]()
    for chunk in pieces(answer, seeded(3), 5):
        html.add(chunk)
        changed = html.render()
        parsed.append(html.parsed)
        assert sum(len(h) for _, h in changed) < 300  # the HTML sent again: the last blocks
    assert len(answer) > 20_000
    assert max(parsed) < 200  # characters parsed by one render, whatever the answer's length
    assert max(parsed[-100:]) <= max(parsed[:100]) + 20


def test_a_reference_defined_late_renders_the_citations_before_it() -> None:
    answer = "See [1] and [2].\n\nMore text.\n\nEven more.\n\n[1]: /view?path=a.md\n\nEnd."
    shown = streamed(pieces(answer, seeded(4), 3))
    assert all(html == render(text, HOSTS) for text, html in shown)
    assert '<a href="/view?path=a.md">1</a>' in shown[-1][1]
