"""The neutral markup of relayed text (``chat.formatting``): conversions and their safety."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liaisonbot.chat import formatting as f
from liaisonbot.chat.matrix.html import message_content
from liaisonbot.chat.matrix.inbound import classify
from liaisonbot.chat.slack.blocks import render
from liaisonbot.domain.cards import Post

ALLOWED_TAGS = {"strong", "em", "code", "pre", "ul", "li", "a", "br", "b"}
INVISIBLE = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\ufeff")


def test_slack_to_neutral_keeps_meaning() -> None:
    text = ("*bold* _it_ `a&lt;b` <https://example.org/a_b|https://example.org/a_b> "
            "<https://evil.example|bank> <mailto:x@y.org|x@y.org> <@U1> <#C1|general> "
            "<!channel> &amp;\n• one\n• two\n```x = *1*\ny```")
    neutral = f.from_slack(text, {"U1": "Alice"}.get)
    assert neutral == ("*bold* _it_ `a<b` https://example.org/a_b bank (https://evil.example) "
                       "x@y.org @Alice #general @channel &\n- one\n- two\n```x = *1*\ny```")


def test_matrix_html_to_neutral_keeps_meaning() -> None:
    html = ('<p>Hi <b>b</b> <i>i</i> <code>c*d</code></p><ul><li>one</li><li>two</li></ul>'
            '<pre><code>raw *x*\n</code></pre><a href="https://x.org/">x.org</a> '
            '<a href="https://matrix.to/#/@bob:x">Bob</a> 2*3')
    assert f.from_matrix_html(html) == ("Hi *b* _i_ `c*d`\n- one\n- two\n```\nraw *x*\n```\n"
                                        "https://x.org/ Bob 2\\*3")


def test_neutral_to_each_platform() -> None:
    neutral = "*b* _i_ `c` see https://x.org/a_b.\n- one\n- two\n2\\*3 <x> & @room"
    assert f.to_mrkdwn(neutral) == ("*b* _i_ `c` see <https://x.org/a_b>.\n• one\n• two\n"
                                    "2*3 &lt;x&gt; &amp; @room")
    assert f.to_html(neutral) == (
        '<strong>b</strong> <em>i</em> <code>c</code> see <a href="https://x.org/a_b">'
        'https://x.org/a_b</a>.<br><ul><li>one</li><li>two</li></ul>2*3 &lt;x&gt; &amp; '
        '@\u2060room')
    assert f.to_plain(neutral) == ("*b* _i_ `c` see https://x.org/a_b.\n- one\n- two\n"
                                   "2*3 <x> & @\u2060room")


def test_round_trips_between_platforms() -> None:
    slack = "*bold* and _it_ with `code` <https://x.org|https://x.org>\n• a"
    html = f.to_html(f.from_slack(slack))
    back = f.to_mrkdwn(f.from_matrix_html(html))
    assert back == "*bold* and _it_ with `code` <https://x.org>\n• a"


def test_disguised_links_show_the_real_url() -> None:
    assert f.link("https://evil.example", "https://bank.example") == \
        "https://bank.example (https://evil.example)"
    assert f.link("https://x.org/", "x.org") == "https://x.org/"
    assert f.link("javascript:alert(1)", "click") == "click (javascript:alert(1))"
    assert "href" not in f.to_html(f.from_matrix_html('<a href="javascript:alert(1)">x</a>'))


def test_invisible_characters_are_removed_not_emoji_joiners() -> None:
    assert f.clean("a\u202eb\u2066c\u200bd\ufeffe") == "abcde"
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"
    assert f.clean(family) == family  # ZWJ stays: emoji sequences and scripts need it


def test_relay_renders_through_both_adapters() -> None:
    post = Post(kind="relay", text="*hi* <!channel>", author="Eve <!here> · x", request_id=1)
    text, blocks = render(post, side=None, team="T1")
    assert text == "*Eve &lt;!here&gt; · x:* *hi* &lt;!channel&gt;"
    assert blocks[0]["text"]["text"] == text
    content = message_content(post, delivery_id="lb-1", thread_root="$r")
    assert content["body"] == "Eve <!here> · x: *hi* <!channel>"
    assert content["formatted_body"] == "<b>Eve &lt;!here&gt; · x</b>: <strong>hi</strong> " \
        "&lt;!channel&gt;"
    assert content["m.mentions"] == {}


def test_matrix_classifies_edits_redactions_and_files() -> None:
    me, who = "@bot:x", "@a:x"
    edit = classify(sender=who, event_type="m.room.message", own_user=me, allowed_servers=(),
                    content={"msgtype": "m.text", "body": "* new",
                             "m.new_content": {"msgtype": "m.text", "body": "new *x*"},
                             "m.relates_to": {"rel_type": "m.replace", "event_id": "$o"}})
    assert edit is not None and edit.kind == "edit" and edit.target == "$o"
    assert edit.text == "new \\*x\\*"
    gone = classify(sender=who, event_type="m.room.redaction", own_user=me,
                    allowed_servers=(), content={}, redacts="$o")
    assert gone is not None and gone.kind == "delete" and gone.target == "$o"
    file = classify(sender=who, event_type="m.room.message", own_user=me, allowed_servers=(),
                    content={"msgtype": "m.file", "body": "scan.pdf", "info": {"size": 9},
                             "m.relates_to": {"rel_type": "m.thread", "event_id": "$r"}})
    assert file is not None and file.kind == "file" and file.files == (("scan.pdf", 9),)
    # the bot's own edits and redactions are never followed
    assert classify(sender=me, event_type="m.room.redaction", own_user=me,
                    allowed_servers=(), content={}, redacts="$o") is None


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.hrefs += [v or "" for k, v in attrs if k == "href"]
        assert all(k == "href" for k, _ in attrs), attrs


HOSTILE = st.sampled_from(["<!channel>", "<!here>", "<@U123>", "@room", "<b>", "</a>",
                           "<script>", "<a href=\"javascript:x\">", "&lt;", "&amp;", "*", "_",
                           "`", "```", "\\", "\n", "- ", "• ", "|", "<https://e.x|b.x>",
                           "https://a.b/c_d", "\u202e", "\u2066", "\u200b", "\u200d", "@"])
TEXT = st.lists(st.one_of(HOSTILE, st.text(max_size=6)), max_size=25).map("".join)


def _slack_safe(mrkdwn: str) -> None:
    assert "<!" not in mrkdwn and "<@" not in mrkdwn and "<#" not in mrkdwn
    for part in mrkdwn.split("<")[1:]:
        assert re.match(r"https?://[^\s<>|]+>", part), part  # only plain links, no labels
    assert not INVISIBLE & set(mrkdwn)


def _matrix_safe(html: str, body: str) -> None:
    tags = _Tags()
    tags.feed(html)
    assert tags.tags <= ALLOWED_TAGS, tags.tags
    assert all(h.startswith(("http://", "https://")) for h in tags.hrefs)
    assert not re.search(r"@room\b", body, re.IGNORECASE)
    shown = re.sub(r'href="[^"]*"', "", html)  # an href pings nobody; its shown text might
    assert not re.search(r"@room\b", shown, re.IGNORECASE)
    assert not INVISIBLE & set(html + body)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_any_neutral_text_renders_safely(text: str) -> None:
    _slack_safe(f.to_mrkdwn(text))
    _matrix_safe(f.to_html(text), f.to_plain(text))


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_any_native_text_crosses_safely(text: str) -> None:
    from_slack = f.from_slack(text, lambda uid: "<!channel> @room")
    _matrix_safe(f.to_html(from_slack), f.to_plain(from_slack))
    from_matrix = f.from_matrix({"format": "org.matrix.custom.html", "formatted_body": text})
    _slack_safe(f.to_mrkdwn(from_matrix))
    _slack_safe(f.to_mrkdwn(f.from_matrix({"body": text})))


PATHOLOGICAL = ["*a ", "_a ", "*a _b ", "x *y _z `", "```a\n", "ahttp://", "http://)", "*"]


def _work(text: str) -> int:
    """Python lines executed in formatting.py while rendering ``text`` (deterministic, unlike
    wall-clock time on a shared machine)."""
    import sys

    from liaisonbot.chat import formatting

    count = 0

    def tracer(frame: Any, event: str, _arg: Any) -> Any:
        nonlocal count
        if frame.f_code.co_filename != formatting.__file__:
            return None
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        formatting.to_html(text)
        formatting.to_mrkdwn(text)
    finally:
        sys.settrace(None)
    return count


@pytest.mark.parametrize("pattern", PATHOLOGICAL)
def test_markup_parsing_is_linear_for_pathological_text(pattern: str) -> None:
    """Many unmatched markers (or fences, or URL look-alikes): 8× the text costs about 8× the
    work, not 64× (each unmatched `*` used to rescan to the end of its line)."""
    small, large = ((pattern * 8000)[:n] for n in (1000, 8000))
    ratio = _work(large) / _work(small)
    assert ratio < 12, f"{pattern!r}: 8x the text cost {ratio:.1f}x the work"


def test_markup_parsing_is_bounded_by_max_neutral() -> None:
    from liaisonbot.chat.formatting import MAX_NEUTRAL, from_plain, to_plain

    huge = "*a " * 20_000
    assert _work(huge) < 1.1 * _work(huge[:MAX_NEUTRAL])
    rendered = to_plain(huge)
    assert len(rendered) <= MAX_NEUTRAL and rendered.endswith("…")
    assert len(from_plain("x" * 50_000)) == MAX_NEUTRAL
    assert to_plain("*a* " * 100) == "*a* " * 100  # normal text: unchanged
