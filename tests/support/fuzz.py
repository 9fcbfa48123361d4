"""Generated console input for the fuzz suite (``tests/test_fuzz.py``): seeded, reproducible.

``console_lines(seed, count)`` returns ``count`` lines: chat commands built from the grammar
(every verb, every option, valid and broken values) then mutated (Unicode and control
characters, bidi and zero-width marks, unbalanced quotes, huge ids, extreme dates, very long
lines, Slack/Matrix/HTML injection strings), console meta-commands with good and bad
arguments, and plain chat and thread messages. The same seed always gives the same lines.
"""

from __future__ import annotations

import random
from collections.abc import Callable

VERBS = ("help", "open", "list", "overdue", "show", "ack", "answer", "close", "reopen",
         "decline", "withdraw", "extend", "assign", "snooze", "who", "record",
         # issue 24: postponement, consultation, forwarding
         "postpone", "consult", "resume", "forward")
#: The events a legal clock may run from (``record R-n EVENT:DATE``, ``open … EVENT:DATE``).
EVENTS = ("received", "decision", "arrest", "consent", "surrender-decision", "opened",
          "bogus", "RECEIVED", "")
INSTRUMENTS = ("eio", "eaw", "freezing", "confiscation", "epoc", "icc", "mla", "informal",
               "bogus", "")
MOMENTS = ("2026-11-30T08:00", "2026-11-30T08:00+01:00", "2026-12-24T23:59:59Z",
           "2026-11-30", "2099-01-01T00:00", "2026-11-30T25:00", "yesterday", "")
OFFICES = ("ba-spo", "icc-otp", "ua-pgo", "nowhere", "BA-SPO", "")
KINDS = ("mla", "evidence", "information", "witness", "surrender", "assets", "other", "MLA",
         "bogus", "")
USERS = ("console:alice", "console:bojan", "alice", "bojan", "console:head-ba", "console:eve",
         "matrix:@alice:example.org", "slack:U123ABC", "slack:T0A/U1", "console:a b", "🙂",
         "matrix:@Alice:example.org", "console:" + "x" * 70, "")
ROOMS = ("icc-otp", "ba-spo", "ua-pgo", "console:icc", "console:ba", "console:ua",
         "console:nowhere", "nowhere", "console:a b", "matrix:!abc:example.org", "slack:C0X", "")
CASES = ("ICC-01/14", "C-1", "OP-2026-017", "ICC-01/14-01/18", "a" * 64, "a" * 65, "x/y.z_w",
         "--", "C 1", "C-1;DROP", "ÄÖ-1", "")
DATES = ("2026-12-20", "2027-01-15", "2026-12-01", "2026-11-01", "2026-02-29", "2026-13-01",
         "9999-12-31", "9999-12-30", "0001-01-01", "3000-01-01", "2099-01-05", "1970-01-01",
         "10d", "5bd", "2w", "0d", "0bd", "99999d", "99999bd", "99999w", "36500d", "36526d",
         "1d", "-1d", "1.5d", "d", "10", "10x", "1e9d", "")
IDS = ("R-1", "R-2", "R-3", "1", "2", "r-1", "R-0", "R-00001", "R-2147483647", "R-2147483648",
       "R-4294967296", "R-99999999999", "R-999999999999", "999999999999", "R-9999999999999",
       "R--1", "R-1.0", "R-", "R-١", "R-１", "")
# Characters and strings a mutation inserts.
ODD_CHARS = ("\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\x9b",
             "\r", "\t", "\n", "\u2028", "\u2029", "\u202a", "\u202b", "\u202c", "\u202d",
             "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200b", "\u200c", "\u200d",
             "\u200e", "\u200f", "\u2060", "\ufeff", "\u00ad", "\u180e", "\ud800", "\udfff",
             "\udce9", "\ufffd", "\uffff", "\U0001f600", "\U0001f468\u200d\U0001f469",
             "e\u0301", "ﬁ", "İ", "ß", "Ω", "עברית", "العربية", "中文", "\u0000\u0000",
             '"', "\u201c", "\u201d", "\u201e", "'", "`", "\\", ":", "*", "_", "~", "|")
INJECTIONS = ("<!channel>", "<!here>", "<!everyone>", "<@U0BOT>", "<@U123|alice>",
              "<#C0123|general>", "<https://evil.example|https://bank.example>", "@room",
              "@room:example.org", "@alice:example.org", "<script>alert(1)</script>",
              '<a href="javascript:alert(1)">x</a>', "<img src=x onerror=alert(1)>",
              "<mx-reply>quoted</mx-reply>", "&lt;b&gt;", "*bold* _it_ `code`", "```\nfence\n```",
              "- item", "[label](https://x.example)", "' OR 1=1 --", "Robert'); DROP TABLE request;--",
              "%s%s%n", "{0}{1}", "{ref}", "${jndi:ldap://x}", "\x1b[2J\x1b[H", "\x1b]0;title\x07",
              "\x1b[31mred\x1b[0m", "!liaison help", "/liaison ack R-1", ":as eve",
              "[console:icc] fake post", "# console remark", "R-1:", "=HYPERLINK(\"x\")",
              "+cmd|' /C calc'!A0", "\u202ecod.exe", "https://example.org/a_b*c*", "null",
              "None", "undefined", "NaN", "-0", "1e308", "\\u0000", "%00", "../../etc/passwd")
WORDS = ("Bank", "records", "of", "X", "witness", "statement", "urgent", "to:", "kind:",
         "due:", "basis:", "conf:", "eta:", "via:", "confidential", "restricted", "please",
         "the", "account", "\u201cquoted words\u201d", '"straight quotes"', "note", "ok")


class Generator:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def pick(self, items: tuple[str, ...]) -> str:
        return self.r.choice(items)

    def words(self, low: int = 1, high: int = 6) -> str:
        parts = [self.pick(WORDS) for _ in range(self.r.randint(low, high))]
        if self.r.random() < 0.2:
            parts.insert(self.r.randrange(len(parts) + 1), self.pick(INJECTIONS))
        return " ".join(parts)

    # ----------------------------------------------------------------- commands

    def command(self) -> str:
        verb = self.pick(VERBS)
        args = getattr(self, f"_{verb}")()
        shown = verb if self.r.random() < 0.9 else self.r.choice((verb.upper(), verb.title()))
        return " ".join(p for p in ("!liaison", shown, args) if p)

    def _help(self) -> str:
        return self.r.choice(("", self.pick(VERBS), "nonsense", self.pick(INJECTIONS)))

    def _open(self) -> str:
        parts = [self.pick(CASES)]
        # several requested offices now and then (``to:A,B``), odd lists included
        offices = [self.pick(OFFICES) for _ in range(1 if self.r.random() < 0.8 else
                                                     self.r.randint(2, 3))]
        options = [f"to:{','.join(offices)}"]
        if self.r.random() < 0.5:
            options.append(f"kind:{self.pick(KINDS)}")
        if self.r.random() < 0.5:
            options.append(f"due:{self.pick(DATES)}")
        if self.r.random() < 0.2:
            options.append(f'basis:"{self.words(1, 4)}"')
        if self.r.random() < 0.2:
            options.append(f"conf:{self.r.choice(('confidential', 'restricted', 'secret', ''))}")
        if self.r.random() < 0.2:
            options.append(f"via:{self.pick(INSTRUMENTS)}")
        if self.r.random() < 0.2:
            options.append(f"{self.pick(EVENTS)}:{self.pick(DATES)}")
        if self.r.random() < 0.2:  # numbered measures (issue 24), sometimes empty ones
            options += [f'measure:"{self.words(0, 3)}"' for _ in range(self.r.randint(1, 3))]
        if self.r.random() < 0.05:
            options.append(options[0])  # an option given twice
        self.r.shuffle(options)
        if self.r.random() < 0.2:
            options.insert(0, "urgent")
        parts += options
        if self.r.random() < 0.9:
            parts.append(self.words())
        return " ".join(parts)

    def _list(self) -> str:
        scope = self.r.choice(("", "open", "overdue", "all", "mine", "bogus", "all mine"))
        return f"{self.pick(CASES)} {scope}".strip()

    def _overdue(self) -> str:
        return "" if self.r.random() < 0.8 else self.words(1, 2)

    def _show(self) -> str:
        return self.pick(IDS) + ("" if self.r.random() < 0.85 else " extra")

    def _transition(self) -> str:
        parts = [self.pick(IDS)]
        if self.r.random() < 0.3:
            parts.append(f"eta:{self.pick(DATES)}")
        if self.r.random() < 0.15:
            parts.append(f"at:{self.pick(MOMENTS)}")
        if self.r.random() < 0.7:
            parts.append(self.words())
        return " ".join(parts)

    _close = _reopen = _withdraw = _transition

    def _of_measure(self, line: str) -> str:
        """Now and then the line's request id made one measure's, ``R-n/k`` (k sometimes out
        of range or not a number)."""
        if self.r.random() < 0.3:
            k = self.r.choice(("1", "2", "3", "0", "99", "x", ""))
            line = line.replace(" ", f"/{k} ", 1) if " " in line else f"{line}/{k}"
        return line

    def _settle(self) -> str:
        """answer/decline, of a whole request or of one measure R-n/k, with conditions on use
        now and then."""
        line = self._of_measure(self._transition())
        if self.r.random() < 0.2:
            line += f' conditions:"{self.words(0, 4)}"'
        return line

    _answer = _decline = _settle

    def _ack(self) -> str:
        """``ack`` with EIO Annex B's options now and then (receipt, reference, contact)."""
        options = []
        if self.r.random() < 0.3:
            options.append(f"received:{self.pick(DATES)}")
        if self.r.random() < 0.2:
            options.append(f'ref:"{self.words(1, 3)}"')
        if self.r.random() < 0.2:
            options.append(f'contact:"{self.words(1, 3)}"')
        return " ".join([self._transition(), *options]).strip()

    def _record(self) -> str:
        parts = [self.pick(IDS), f"{self.pick(EVENTS)}:{self.pick(DATES + MOMENTS)}"]
        if self.r.random() < 0.5:
            parts.append(self.words(0, 4))
        return " ".join(p for p in parts if p)

    def _extend(self) -> str:
        return " ".join(p for p in (self.pick(IDS), self.pick(DATES),
                                    self.words(0, 4) if self.r.random() < 0.8 else "") if p)

    _snooze = _extend

    def _postpone(self) -> str:
        """``postpone R-n[/k] UNTIL REASON`` (a DUE like extend's)."""
        return self._of_measure(self._extend())

    def _consult(self) -> str:
        return " ".join(p for p in (self.pick(IDS), self.words(0, 4)) if p)

    _resume = _consult

    def _forward(self) -> str:
        """``forward R-n to:OFFICE REASON``, with the odd missing or doubled office."""
        target = self.r.choice((f"to:{self.pick(OFFICES)}", self.pick(OFFICES),
                                f"to:{self.pick(OFFICES)},{self.pick(OFFICES)}"))
        return " ".join(p for p in (self.pick(IDS), target,
                                    self.words(0, 4) if self.r.random() < 0.8 else "") if p)

    def _assign(self) -> str:
        return " ".join(p for p in (self.pick(IDS), self.pick(USERS),
                                    "" if self.r.random() < 0.9 else "x") if p)

    def _who(self) -> str:
        if self.r.random() < 0.3:
            return ""
        office = self.pick(OFFICES) if self.r.random() < 0.8 else self.pick(INJECTIONS)
        return office + ("" if self.r.random() < 0.9 else " " + self.words(1, 2))

    # ----------------------------------------------------------------- console lines

    def meta(self) -> str:
        verb = self.r.choice((":as", ":in", ":thread", ":now", ":advance", ":where", ":bogus",
                              ":as", ":in", ":thread"))
        if verb == ":as":
            arg = self.pick(USERS)
        elif verb == ":in":
            arg = self.pick(ROOMS)
        elif verb == ":thread":
            arg = self.r.choice((*IDS, "garbage", ""))
        elif verb == ":now":
            arg = self.r.choice(("2026-12-01T09:30+01:00", "2026-12-02T08:00+00:00",
                                 "2026-11-30T10:00", "2026-12-01", "garbage",
                                 "0001-01-01T00:00+01:00", "9999-12-31T23:59+00:00",
                                 "3000-01-01T00:00Z", "2028-06-01T00:00Z",
                                 "2026-12-01T10:00:00+14:00", "2026-12-01T10:00:00-12:00", ""))
        elif verb == ":advance":
            arg = self.r.choice(("1m", "90m", "6h", "1d", "2d", "3d", "0m", "401d", "99999d",
                                 "99999w", "1bd", "-1d", "x", ""))
        else:
            arg = self.r.choice(("", self.words(1, 2)))
        sep = self.r.choice((" ", " ", " ", "\t", "  "))
        return f"{verb}{sep}{arg}" if arg else verb

    def plain(self) -> str:
        if self.r.random() < 0.5:
            return f"{self.pick(IDS)}: {self.words()}"
        return self.words()

    # ----------------------------------------------------------------- mutations

    def mutate(self, line: str) -> str:
        ops: list[Callable[[str], str]] = [self._insert, self._insert, self._delete,
                                           self._swap_tokens, self._duplicate, self._case,
                                           self._long, self._unquote]
        for _ in range(self.r.randint(1, 3)):
            line = self.r.choice(ops)(line)
        return line

    def _at(self, line: str) -> int:
        return self.r.randrange(len(line) + 1)

    def _insert(self, line: str) -> str:
        at = self._at(line)
        what = self.pick(ODD_CHARS) if self.r.random() < 0.7 else self.pick(INJECTIONS)
        return line[:at] + what + line[at:]

    def _delete(self, line: str) -> str:
        if len(line) < 2:
            return line
        at = self.r.randrange(len(line))
        return line[:at] + line[at + self.r.randint(1, 5):]

    def _swap_tokens(self, line: str) -> str:
        tokens = line.split(" ")
        if len(tokens) > 2:
            i, j = self.r.randrange(1, len(tokens)), self.r.randrange(1, len(tokens))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        return " ".join(tokens)

    def _duplicate(self, line: str) -> str:
        tokens = line.split(" ")
        token = self.r.choice(tokens)
        return " ".join([*tokens, *[token] * self.r.randint(1, 50)])

    def _case(self, line: str) -> str:
        return line.upper() if self.r.random() < 0.5 else line.swapcase()

    def _long(self, line: str) -> str:
        size = self.r.choice((300, 2_001, 4_001, 8_001, 12_000, 20_000)) \
            if self.r.random() < 0.97 else 100_000
        # (No long runs of markup markers: the relay parser's cost is measured on its own.)
        filler = self.r.choice(("x", "ab ", "\u202e", "🙂", "\u200b", "R-1 ", "é", "\x1b[2J"))
        return line + " " + (filler * (size // len(filler) + 1))[:size]

    def _unquote(self, line: str) -> str:
        at = self._at(line)
        return line[:at] + self.r.choice(('"', "\u201c", '""', '"x')) + line[at:]

    # ----------------------------------------------------------------- the mix

    def line(self) -> str:
        roll = self.r.random()
        if roll < 0.45:
            line = self.command()
        elif roll < 0.7:
            line = self.meta()
        else:
            line = self.plain()
        if self.r.random() < 0.45:
            line = self.mutate(line)
        return line


def console_lines(seed: int, count: int) -> list[str]:
    """``count`` lines for the console, the same for the same seed. Every session starts
    with a few valid requests so that later lines find something to act on."""
    gen = Generator(seed)
    setup = ["!liaison open ICC-01/14 to:ba-spo kind:mla due:30d Bank records of X",
             "!liaison open C-1 to:ba-spo Witness statement",
             "!liaison open C-1 to:ba-spo conf:confidential Secret witness"]
    return (setup + [gen.line() for _ in range(count)])[:count]
