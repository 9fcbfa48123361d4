"""Languages (issue 14): the catalogs, the locale-aware dates and numbers, the config check, and
console scenarios where an English ICC room works with a French and a Ukrainian office."""

from __future__ import annotations

import copy
import io
import json
import re
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from babel.dates import format_datetime
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from conftest import BASE_CONFIG, start_bot
from liaisonbot.chat.slack import texts
from liaisonbot.config import ConfigError, parse
from liaisonbot.domain import grammar, timefmt
from liaisonbot.service import i18n
from liaisonbot.service import messages as m
from liaisonbot.service.i18n import catalog_path, languages, words

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
TRANSLATED = [lang for lang in languages() if lang != "en"]
KEYWORDS = {"N_": None, "Np_": (1, 2), "Nc_": ((1, "c"), 2)}
#: Command words inside sentences: they stay as the contract writes them in every language.
COMMAND_WORDS = re.compile(r"(?:!liaison|/liaison|\b(?:ack|answer|show|complete) \{ref\}|"
                           r"to:OFFICE|via:|eta:DATE|kind:|conf:|\bhelp\b|`show \{ref\}`)")


def _placeholders(text: str) -> list[str]:
    """``{name}`` (messages.py) and ``%(name)s`` (the board's templates) placeholders."""
    return sorted([f"{name}!{conv}" for _, name, _, conv in string.Formatter().parse(text)
                   if name is not None] + re.findall(r"%\(\w+\)s", text))


def _markup(text: str) -> list[str]:
    """What must survive translation besides placeholders: code spans and tags."""
    return sorted(re.findall(r"`[^`]*`|<[^>]+>", text))


def _extracted() -> set[Any]:
    """Every msgid marked in the source and the board's templates (what ``pybabel extract``
    finds, with babel.cfg's mapping and the default keywords plus ours)."""
    with (ROOT / "babel.cfg").open() as fp:
        method_map, options_map = parse_mapping_cfg(fp)
    found: set[Any] = set()
    for _file, _line, message, _comments, context in extract_from_dir(
            str(SRC), method_map=method_map, options_map=options_map,
            keywords={**DEFAULT_KEYWORDS, **KEYWORDS}):
        if isinstance(message, tuple) and context is None:
            found.add(message if len(message) == 2 and message[1] else message[0])
        else:
            found.add((context, message) if context else message)
    return found


def _constants() -> set[Any]:
    """Every sentence constant of the message modules, marked or not (a sentence another
    branch adds without ``N_`` is still required here)."""
    found: set[Any] = set()

    def take(value: Any) -> None:
        if isinstance(value, str) and value.strip():
            found.add(value)
        elif isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
            found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                take(item)

    for module in (m, texts):
        for name, value in vars(module).items():
            if name.isupper() and getattr(grammar, name, None) is not value:  # not imported
                take(value)
    take(grammar.USE)
    return found


def _catalog(lang: str) -> Any:
    with catalog_path(lang).open("rb") as fp:
        return read_po(fp, locale=lang)


def test_template_is_up_to_date_with_the_source() -> None:
    with (SRC / "liaisonbot" / "locale" / "liaisonbot.pot").open("rb") as fp:
        pot = read_po(fp)
    in_pot = {((msg.context, msg.id) if msg.context else msg.id) for msg in pot if msg.id}
    assert _extracted() == in_pot, "run the pybabel extract line in babel.cfg"
    # The board's templates are extracted too (Jinja2's i18n extension, babel.cfg).
    assert {"Case board", "Times in %(tz)s · as of %(moment)s", ("board", "Answer"),
            ("%(shown)s case", "%(shown)s cases")} <= in_pot


@pytest.mark.parametrize("lang", TRANSLATED)
def test_catalog_is_complete_and_faithful(lang: str) -> None:
    catalog = _catalog(lang)
    expected_plurals = get_plural(lang).num_plurals
    assert catalog.num_plurals == expected_plurals
    entries = {((msg.context, msg.id) if msg.context else msg.id): msg for msg in catalog
               if msg.id}
    required = _extracted() | _constants()
    problems = []
    for msgid in sorted(required, key=str):
        msg = entries.get(msgid)
        if msg is None:
            problems.append(f"missing: {msgid!r}")
            continue
        if msg.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        source = msg.id if isinstance(msg.id, tuple) else (msg.id,)
        forms = msg.string if isinstance(msg.string, tuple) else (msg.string,)
        if msg.pluralizable and len(forms) != expected_plurals:
            problems.append(f"{len(forms)} plural forms instead of {expected_plurals}: {msgid!r}")
        for form in forms:
            if not form:
                problems.append(f"untranslated: {msgid!r}")
                continue
            if _placeholders(form) != _placeholders(source[-1]):
                problems.append(f"placeholders differ: {msgid!r} → {form!r}")
            if _markup(form) != _markup(source[-1]):
                problems.append(f"markup differs: {msgid!r} → {form!r}")
            for word in COMMAND_WORDS.findall(source[-1]):
                if word not in form:
                    problems.append(f"command word {word!r} lost: {msgid!r} → {form!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_translation_formats_and_the_date_pattern_is_valid(lang: str) -> None:
    w = words(lang)
    for msg in _catalog(lang):
        if not msg.id:
            continue
        for form in msg.string if isinstance(msg.string, tuple) else (msg.string,):
            names = {name.split(".")[0].split("[")[0] for _, name, _, _ in
                     string.Formatter().parse(form) if name}
            form.format(**{name: 1 for name in names})
            if "%(" in form:  # a board template's msgid: Jinja2 fills it with %
                form % {name: 1 for name in re.findall(r"%\((\w+)\)s", form)}
    moment = datetime(2026, 12, 30, 16, 30, tzinfo=UTC)
    assert format_datetime(moment, w(m.DATE_TIME), locale=lang)  # a real Babel pattern


def test_plural_forms_follow_each_language() -> None:
    uk, fr, en = words("uk"), words("fr"), words("en")
    assert [uk.count(m.N_REQUESTS, n) for n in (1, 2, 5, 11, 21, 22, 25, 111)] == [
        "1 запит", "2 запити", "5 запитів", "11 запитів", "21 запит", "22 запити", "25 запитів",
        "111 запитів"]
    assert [uk.count(m.N_BUSINESS_DAYS, n) for n in (1, 3, 8)] == [
        "1 робочий день", "3 робочі дні", "8 робочих днів"]
    assert [fr.count(m.N_REQUESTS, n) for n in (0, 1, 2)] == ["0 demande", "1 demande",
                                                               "2 demandes"]
    assert [en.count(m.N_REQUESTS, n) for n in (1, 2)] == ["1 request", "2 requests"]


def test_dates_relative_times_and_numbers_in_the_readers_locale() -> None:
    now = datetime(2026, 12, 25, 9, tzinfo=UTC)
    later, earlier = now + timedelta(days=5, hours=2), now - timedelta(days=2)
    assert words("fr").when(later, "Europe/Paris", now) == \
        "mer. 30 déc. 2026, 12:00 CET (dans 5 jours)"
    assert words("uk").when(earlier, "Europe/Kyiv", now) == \
        "ср, 23 груд. 2026, 11:00 EET (2 дні тому)"
    assert words("uk").relative(now + timedelta(hours=3), now) == "через 3 години"
    assert words("fr").tenths(1234.5) == "1\u202f234,5"
    assert words("uk").percent(0.75) == "75%"
    assert words("fr").percent(0.75) == "75\xa0%"


@pytest.mark.parametrize("offset", [0, 30, 59, 61, 3600, 5399, 5401, 86400, 129599, 129601,
                                    864000, -45, -7200, -90000, -864000])
def test_english_dates_are_what_they_were(offset: int) -> None:
    """English keeps the wording the contract's examples show (``Wed 2026-12-30 17:30 CET
    (in 5 days)``), now written through Babel (which also says "1 minute", not "1 minutes")."""
    now = datetime(2026, 12, 25, 9, tzinfo=UTC)
    moment = now + timedelta(seconds=offset)
    for tz in ("Europe/Amsterdam", "America/New_York", "UTC"):
        by_hand = timefmt.when(moment, tz, now).replace(" 1 minutes", " 1 minute")
        assert words("en").when(moment, tz, now) == by_hand


def test_check_config_refuses_a_language_without_a_catalog() -> None:
    data = copy.deepcopy(BASE_CONFIG)
    data["database"] = {"url": "sqlite+aiosqlite:///x.db"}
    data["offices"][1]["language"] = "xx"
    with pytest.raises(ConfigError) as caught:
        parse(data, "test-config")
    assert "offices[1].language" in str(caught.value)
    assert "'xx'" in str(caught.value)
    data["offices"][1]["language"] = "uk"
    assert parse(data, "test-config").directory.office("ba-spo").language == "uk"


def test_a_sentence_raised_already_formatted_is_shown_as_it_is() -> None:
    """A refusal built the old way (formatted English, braces from user text included) is
    neither re-formatted nor lost: the catalog does not know it, so it reads in English."""
    from liaisonbot.service.desk import Refusal

    refusal = Refusal("There is no office '{x}'. Offices: a, b.")
    assert refusal.said(words("fr")) == str(refusal) == "There is no office '{x}'. Offices: a, b."
    error = grammar.CommandError("Bad {thing}")
    assert error.said(words("uk")) == str(error) == "Bad {thing}"
    translated = Refusal(m.NOT_PARTY, ref="R-3", office="{PNAT}")
    assert translated.said(words("fr")) == "R-3 n’existe pas ou {PNAT} n’y est pas partie."


def test_a_compiled_catalog_is_used_when_present(tmp_path: Path, monkeypatch: Any) -> None:
    """The build hook's .mo wins over the .po when it is not older (the install path)."""
    from babel.messages.mofile import write_mo

    target = tmp_path / "fr" / "LC_MESSAGES"
    target.mkdir(parents=True)
    catalog = _catalog("fr")
    catalog.get(m.NOW).string = "MO"  # tell the compiled file apart
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    (target / "liaisonbot.mo").write_bytes(buffer.getvalue())
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.translator.cache_clear()
    try:
        assert i18n.translator("fr").gettext(m.NOW) == "MO"
        assert "fr" in i18n.languages()
    finally:
        monkeypatch.undo()
        i18n.translator.cache_clear()
    assert i18n.translator("fr").gettext(m.NOW) == "maintenant"


# ---------------------------------------------------------------------- console scenarios

def _languages_config() -> dict[str, Any]:
    offices = copy.deepcopy(BASE_CONFIG["offices"])
    offices[1].update(language="fr")  # ba-spo speaks French here
    offices[2].update(language="uk", members=["console:olena"], escalation=["console:head-ua"])
    return {"offices": offices}


async def _bot(url: str, **extra: Any) -> Any:
    from conftest import make_settings

    return await start_bot(make_settings(url, **{**_languages_config(), **extra}))


async def test_each_room_hears_its_own_language(any_url: str) -> None:
    bot = await _bot(any_url)
    opened = await bot.exec("!liaison open ICC-01/14 to:ba-spo kind:mla due:10d Bank records",
                            user="alice", room="icc")
    opened += await bot.exec("!liaison open ICC-01/14 to:ua-pgo due:5d Intercepts",
                             user="alice", room="icc")
    # The cards: each requested room in its language, the ICC room in English.
    assert "[console:ba] R-1 ouverte : ICC-01/14, entraide judiciaire, ICC OTP → BA SPO, échéance" in opened
    assert "Objet : Bank records" in opened
    assert "[console:ua] R-2 відкрито: ICC-01/14, інформація від ICC OTP до UA PGO, строк" \
        in opened
    assert "Суть запиту: Intercepts" in opened
    assert "[console:icc] R-1 opened: ICC-01/14, mla from ICC OTP to BA SPO, due" in opened
    assert "Summary: Bank records" in opened
    # Acks, change notes and replies.
    ack = await bot.exec("!liaison ack R-1 eta:2026-12-08 nous y travaillons", user="bojan",
                         room="ba")
    assert "[console:ba] Statut de R-1 : réception accusée." in ack
    assert "[console:ba] [R-1 thread] R-1 : réception accusée par console:bojan (ba-spo) · " \
        "réponse attendue mar. 8 déc. 2026, 16:00 CET" in ack
    assert "[console:icc] [R-1 thread] R-1 acknowledged by console:bojan (ba-spo) · answer " \
        "expected Tue 2026-12-08 16:00 CET" in ack
    ack_uk = await bot.exec("!liaison ack R-2", user="olena", room="ua")
    assert "[console:ua] Статус R-2: отримання підтверджено." in ack_uk
    assert "[console:icc] [R-2 thread] R-2 acknowledged by console:olena (ua-pgo)" in ack_uk
    # Refusals: the desk's and the grammar's, in the room's language; command words kept.
    assert await bot.exec("!liaison close R-1", user="bojan", room="ba") == (
        "[console:ba] Seule l’autorité requérante (ICC OTP) peut exécuter close R-1.")
    refused = await bot.exec("!liaison show", user="olena", room="ua")
    assert refused.startswith("[console:ua] Не зазначено номер запиту. Синтаксис: show R-n")
    assert await bot.exec("!liaison show R-9", user="olena", room="ua") == (
        "[console:ua] R-9 не існує або UA PGO не є його стороною.")
    assert await bot.exec("!liaison show R-9", user="alice", room="icc") == (
        "[console:icc] R-9 does not exist or ICC OTP is not party to it.")
    help_fr = await bot.exec("!liaison help", user="bojan", room="ba")
    assert help_fr.startswith("[console:ba] Commandes de liaisonbot pour les demandes "
                              "d’entraide judiciaire (à saisir après !liaison")
    assert "open CASE to:OFFICE" in help_fr  # the usage lines are command words
    listed = await bot.exec("!liaison list ICC-01/14 all", user="olena", room="ua")
    assert "[console:ua] ICC-01/14: 1 запит (усі) для UA PGO" in listed
    # export stays language-neutral: English columns, ISO 8601 dates, raw statuses.
    from liaisonbot.service.reports import FIELDS, export_case

    exported = await export_case(bot.core.uow, "ICC-01/14", fmt="csv", office="ba-spo")
    header, row = exported.splitlines()[:2]
    assert header == ",".join(FIELDS)
    assert row.startswith("R-1,ICC-01/14,mla,icc-otp,ba-spo,acknowledged,False,restricted,2026-")


async def test_nudges_and_digests_in_each_office_language(sqlite_url: str) -> None:
    bot = await _bot(sqlite_url)
    await bot.exec("!liaison open C-1 to:ba-spo due:2026-12-02 Records", user="alice", room="icc")
    await bot.exec("!liaison open C-1 to:ua-pgo due:2026-12-02 Witnesses", user="alice",
                   room="icc")
    await bot.exec("!liaison open C-2 to:ua-pgo due:2026-12-03 Intercepts", user="alice",
                   room="icc")
    start = len(bot.out)
    await bot.console.advance_to(datetime(2026, 12, 8, 12, tzinfo=UTC))
    out = "\n".join(bot.out[start:])
    # Answer nudges in the requested rooms, the one-line note on the English side.
    assert re.search(r"\[console:ba\] Relance n° 1 : R-1 \(C-1, informations, autorité "
                     r"requérante : ICC OTP\) était attendue pour le mer\. 2 déc\. 2026, "
                     r"16:00 CET \(il y a 16 heures\) ; retard : 1 jour ouvré\. Veuillez "
                     r"répondre \(answer R-1\)", out)
    assert re.search(r"\[console:ua\] Нагадування № 1: строк виконання R-2 \(C-1, інформація "
                     r"від ICC OTP\) сплив ср, 2 груд\. 2026, 18:00 EET \(15 годин тому\); "
                     r"прострочення: 1 робочий день\.", out)
    assert "[console:icc] [R-1 thread] Reminder 1 sent to BA SPO for R-1." in out
    assert "прострочення: 3 робочі дні" in out  # the next nudge: Ukrainian plural
    assert "retard : 3 jours ouvrés" in out
    # Morning digests: each office's own.
    assert "[console:ba] Point du matin pour BA SPO : 1 en retard, 0 à échéance" in out
    assert "[console:ua] Ранкове зведення для UA PGO: прострочено — 2" in out
    assert "[console:icc] Morning digest for ICC OTP: 3 overdue" in out
    digest_ua = [b for b in bot.out[start:] if "Ранкове зведення для UA PGO: прострочено — 2" in b]
    assert any("прострочено на 3 робочі дні" in b for b in digest_ua)  # card flags
    assert not any("overdue" in b or "due " in b or "late" in b for b in digest_ua)
    digest_icc = next(b for b in bot.out[start:] if "Morning digest for ICC OTP: 3" in b)
    assert "business days late" in digest_icc


async def test_confidential_direct_messages_in_the_members_language(sqlite_url: str) -> None:
    bot = await _bot(sqlite_url)
    out = await bot.exec("!liaison open C-1 to:ua-pgo conf:confidential Names of witnesses",
                         user="alice", room="icc")
    assert "[dm:console:olena] R-1 відкрито: C-1" in out
    assert "Суть запиту: Names of witnesses" in out
    assert "[dm:console:alice] R-1 opened: C-1" in out
    assert "[console:ua]" in out and "(конфіденційно, доступно лише уповноваженим особам)" in out


def test_slack_cuts_a_long_card_with_a_pointer_in_the_readers_language() -> None:
    from liaisonbot.chat.slack.blocks import render
    from liaisonbot.domain.cards import Card, Post

    card = Card(request_id=7, case="C-1", kind="mla", requesting="icc", requesting_name="ICC",
                requested="pgo", requested_name="PGO", status="open",
                due_at="2026-12-30T16:30:00+00:00", summary="Свідчення " * 400)
    post = Post(kind="card", text="R-7", card=card, locale="uk",
                as_of="2026-12-25T09:00:00+00:00", tz="Europe/Kyiv")
    text, blocks = render(post, side="requested", team=None)
    summary = blocks[3]["text"]["text"]
    assert len(summary) <= 3000
    assert summary.endswith("… (текст обрізано; `show R-7` показує його повністю)")
    assert '"Підтвердити отримання"' in json.dumps(blocks, ensure_ascii=False)
    assert "строк ср, 30 груд. 2026, 18:30 EET (через 5 днів)" in text


async def test_escalations_and_weekly_reports_in_each_office_language(sqlite_url: str) -> None:
    bot = await _bot(sqlite_url, reports={"weekly": ["ba-spo", "ua-pgo", "icc-otp"]})
    await bot.exec("!liaison open C-1 to:ba-spo due:2026-12-02 Records", user="alice", room="icc")
    await bot.exec("!liaison open C-1 to:ua-pgo due:2026-12-02 Witnesses", user="alice",
                   room="icc")
    await bot.exec("!liaison ack R-1", user="bojan", room="ba")
    start = len(bot.out)
    await bot.console.advance_to(datetime(2026, 12, 10, 15, tzinfo=UTC))
    out = "\n".join(bot.out[start:])
    # The third answer nudge is escalated to the office's escalation people, in its language.
    assert re.search(r"\[console:ba\] Relance n° 3 : R-1 .* Signalé à console:head-ba\.", out)
    assert re.search(r"\[console:ua\] Нагадування № 3: .* Доведено до відома: console:head-ua\.",
                     out)
    # Monday's weekly report: each office's own, figures in its number format.
    assert "[console:ba] Rapport hebdomadaire pour BA SPO :\n    - avec icc-otp : 1 en cours, " \
        "1 en retard ; délai médian d’accusé de réception : 0,0 h" in out
    assert "[console:ua] Щотижневий звіт для UA PGO:\n    - з icc-otp: відкритих — 1, " \
        "прострочених — 1;" in out
    assert "Встановлені законом строки (час, коли запит був неповним, не враховується):" in out
    assert "[console:icc] Weekly report for ICC OTP:\n    - with ba-spo: 1 open, 1 overdue; " \
        "median time to acknowledge 0.0 h" in out
