"""Issue 24: confidential by default where the law says so (an instrument's ``conf``), fail
safe (no confidential request to or from an office that lists no members), every reply to a
command shown to the actor, and kinds, levels, statuses and instrument labels in the reader's
language. Console scenarios on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import BASE_CONFIG, EU_OFFICES, TestBot, console_posts, make_settings, start_bot
from liaisonbot.config import ConfigError
from liaisonbot.domain.model import Confidentiality
from liaisonbot.service.levels import unreachable

ROOT = Path(__file__).resolve().parent.parent

#: The example config's ICC profile (Rome Statute art. 87(3)), and two more to name.
INSTRUMENTS: dict[str, Any] = {
    "icc": {"name": "Request for cooperation of the International Criminal Court "
                    "(Rome Statute, Part 9)", "short": "ICC Part 9",
            "source": "Rome Statute arts. 86-102", "requires": ["basis"],
            "conf": "confidential", "conf_cite": "art. 87(3)"},
    "eio": {"name": "European Investigation Order (Directive 2014/41/EU)", "short": "EIO",
            "source": "Directive 2014/41/EU, arts. 12, 16 and 32", "scope": "eu",
            "not_bound": ["DK", "IE"], "ack_within": "7d", "ack_cite": "art. 16(1)",
            "requires": ["basis", "measure"]},
    "mla": {"name": "Mutual legal assistance under a treaty", "short": "MLA",
            "source": "the applicable MLA treaty; classic MLA treaties set no fixed deadline",
            "requires": ["basis"]},
}


def _offices() -> list[dict[str, Any]]:
    """The test offices (icc-otp and ba-spo list members, ua-pgo none), a French office and
    a German one with members, and ua-pgo speaking Ukrainian."""
    offices = copy.deepcopy(BASE_CONFIG["offices"])
    offices[2]["language"] = "uk"
    de = {**copy.deepcopy(EU_OFFICES[0]), "members": ["console:katrin"]}
    fr = {"slug": "fr-pnat", "name": "PNAT", "timezone": "Europe/Paris",
          "working_hours": "09:00-18:00", "holidays": "FR", "rooms": ["console:fr"],
          "country": "FR", "language": "fr", "members": ["console:claire"]}
    return [*offices, de, fr]


async def _bot(url: str) -> TestBot:
    return await start_bot(make_settings(url, offices=_offices(), instruments=INSTRUMENTS))


_blocks = console_posts


def _in(room: str, out: str) -> str:
    return "\n".join(b for b in _blocks(out) if b.startswith(f"[{room}]"))


async def _count(bot: TestBot, case: str) -> int:
    async with bot.core.uow() as uow:
        return len(await uow.requests.all_for_case(case))


async def test_icc_surrender_is_confidential_by_default_and_members_told_by_dm(
        any_url: str) -> None:
    bot = await _bot(any_url)
    try:
        out = await bot.exec('!liaison open ICC-01/22 to:ba-spo kind:surrender via:icc '
                             'basis:"Rome Statute art. 89" person:"Suspect M." '
                             "Arrest and surrender of the suspect", user="alice", room="icc")
        rooms = _in("console:icc", out) + _in("console:ba", out)
        assert "R-1 opened: ICC-01/22" in _in("console:icc", out)
        assert "R-1 opened: ICC-01/22" in _in("console:ba", out)
        for secret in ("Suspect M.", "Arrest and surrender", "Rome Statute art. 89"):
            assert secret not in rooms, secret
        assert "confidential" in rooms and "(confidential, shown to listed members only)" in rooms
        # The parties' listed members are told by direct message, the summary and person too.
        for member in ("console:alice", "console:head-icc", "console:bojan", "console:head-ba"):
            dm = _in(f"dm:{member}", out)
            assert "Arrest and surrender of the suspect" in dm and "Suspect M." in dm, member
        # The reply reaches the actor in the room the command was typed in, after the card.
        reply = _blocks(out)[-1]
        assert reply.startswith("[console:icc] Requests via ICC Part 9 are confidential "
                                "unless conf: says otherwise (art. 87(3)).")
        assert "The summary is shown only to the listed members of both offices" in reply
        # show in a room masks it; the history records the level
        show = await bot.exec("!liaison show R-1", user="bojan", room="ba")
        assert "confidentiality: confidential" in _in("console:ba", show)
        assert "Suspect M." not in _in("console:ba", show)
        assert "Suspect M." in _in("dm:console:bojan", show)
        async with bot.core.uow() as uow:
            request = await uow.requests.get(1)
            entries = await uow.history.for_request(1)
        assert request is not None and request.confidentiality is Confidentiality.CONFIDENTIAL
        assert entries[0].detail["confidentiality"] == "confidential"
    finally:
        await bot.core.close()


async def test_a_confidential_request_to_or_from_an_office_without_members_is_refused(
        any_url: str) -> None:
    bot = await _bot(any_url)
    try:
        refused = await bot.exec("!liaison open C-9 to:ua-pgo conf:confidential Secret witness",
                                 user="alice", room="icc")
        assert refused == ("[console:icc] UA PGO (ua-pgo) lists no members, so nobody there "
                           "could read a confidential request; it was not opened (the desk's "
                           "operator can list its members).")
        by_default = await bot.exec('!liaison open C-9 to:ua-pgo via:icc basis:"art. 93" X',
                                    user="alice", room="icc")
        assert "UA PGO (ua-pgo) lists no members" in by_default
        # From it, too (the requesting office's members would read it): in its language.
        from_ua = await bot.exec('!liaison open C-9 to:icc-otp via:icc basis:"ст. 93" Y',
                                 user="olena", room="ua")
        assert from_ua.startswith("[console:ua] Для UA PGO (ua-pgo) не зазначено жодної")
        assert await _count(bot, "C-9") == 0  # nothing stored
        async with bot.core.uow() as uow:
            assert await uow.history.for_request(1) == []
        # A restricted request to it goes as before.
        ok = await bot.exec("!liaison open C-9 to:ua-pgo Public records", user="alice",
                            room="icc")
        assert "R-1 opened" in ok and await _count(bot, "C-9") == 1
    finally:
        await bot.core.close()


async def test_lowering_the_default_only_by_a_listed_member_of_the_requesting_office(
        any_url: str) -> None:
    bot = await _bot(any_url)
    try:
        # ua-pgo lists no members, so anyone in its room acts for it, but nobody may lower.
        refused = await bot.exec('!liaison open C-3 to:icc-otp via:icc conf:restricted '
                                 'basis:"art. 93" Bank records', user="olena", room="ua")
        assert refused.startswith("[console:ua] Запити за МКС, частина 9 є конфіденційними "
                                  "(art. 87(3)); відкрити такий запит із рівнем «обмежений "
                                  "доступ» може лише уповноважена особа UA PGO.")
        assert await _count(bot, "C-3") == 0
        # A listed member of the requesting office may: restricted, seen in both rooms.
        out = await bot.exec('!liaison open C-3 to:ba-spo via:icc conf:restricted '
                             'basis:"art. 93" Bank records', user="alice", room="icc")
        assert "Summary: Bank records" in _in("console:ba", out)
        assert not any(b.startswith("[dm:") for b in _blocks(out))
        assert "confidential unless" not in out
        # Upward always: no instrument, conf:confidential.
        up = await bot.exec("!liaison open C-3 to:ba-spo conf:confidential Witness W-17",
                            user="alice", room="icc")
        assert "Witness W-17" not in _in("console:ba", up) + _in("console:icc", up)
        async with bot.core.uow() as uow:
            levels = [r.confidentiality for r in await uow.requests.all_for_case("C-3")]
        assert sorted(levels) == [Confidentiality.CONFIDENTIAL, Confidentiality.RESTRICTED]
    finally:
        await bot.core.close()


async def test_an_open_with_nothing_more_to_say_is_answered_by_its_card_alone(
        any_url: str) -> None:
    bot = await _bot(any_url)
    try:
        out = await bot.exec("!liaison open C-4 to:ba-spo Bank records", user="alice",
                             room="icc")
        mine = [b for b in _blocks(out) if b.startswith("[console:icc]")]
        assert len(mine) == 1 and mine[0].startswith("[console:icc] R-1 opened: C-4")
    finally:
        await bot.core.close()


async def test_a_french_room_reads_kind_level_status_and_instrument_in_french(
        any_url: str) -> None:
    bot = await _bot(any_url)
    try:
        out = await bot.exec('!liaison open OP-1 to:fr-pnat kind:evidence via:eio '
                             'basis:"StPO § 161" measure:"audition" Relevés bancaires',
                             user="katrin", room="de")
        card = _in("console:fr", out)
        assert "R-1 ouverte : OP-1, preuves, DE GBA → PNAT" in card
        assert "R-1 · OP-1 · preuves · DEE" in card
        assert "DE GBA → PNAT · ouverte · échéance" in card
        assert "DEE · pas de délai légal (directive 2014/41/UE, art. 12, 16 et 32)" in card
        assert "evidence" not in card and "EIO" not in card
        # the requesting (English) room keeps English words
        assert "R-1 · OP-1 · evidence · EIO" in _in("console:de", out)
        show = _in("console:fr", await bot.exec("!liaison show R-1", user="claire", room="fr"))
        assert "confidentialité : diffusion restreinte" in show
        assert "nature : preuves" in show and "eio (DEE)" in show
        listed = await bot.exec("!liaison list OP-1", user="claire", room="fr")
        assert "R-1 · preuves · DEE · de-gba → fr-pnat · ouverte" in listed
        secret = await bot.exec('!liaison open OP-1 to:fr-pnat kind:witness via:eio '
                                'conf:confidential basis:"§ 161" measure:"audition" Zeuge W',
                                user="katrin", room="de")
        card = _in("console:fr", secret)
        assert "R-2 · OP-1 · témoin · DEE · confidentiel" in card and "Zeuge W" not in card
        who = await bot.exec("!liaison who fr-pnat", user="claire", room="fr")
        assert "eio (DEE)" in who
    finally:
        await bot.core.close()


async def test_a_ukrainian_room_reads_them_in_ukrainian(any_url: str) -> None:
    bot = await _bot(any_url)
    try:
        out = await bot.exec('!liaison open C-5 to:ua-pgo kind:evidence via:mla '
                             'basis:"Treaty art. 3" Bank records', user="alice", room="icc")
        card = _in("console:ua", out)
        assert "R-1 відкрито: C-5, докази від ICC OTP до UA PGO" in card
        assert "R-1 · C-5 · докази · МПД" in card
        assert "відкритий · строк" in card
        assert "МПД · без встановленого законом строку (чинний договір про правову " \
            "допомогу; класичні" in card
        assert "evidence" not in card and "MLA" not in card
        show = _in("console:ua", await bot.exec("!liaison show R-1", user="olena", room="ua"))
        assert "обмежений доступ" in show and "mla (МПД)" in show
    finally:
        await bot.core.close()


def test_the_conf_key_is_checked_and_offices_without_members_are_named() -> None:
    settings = make_settings("sqlite+aiosqlite:///unused.db", instruments=INSTRUMENTS)
    assert settings.directory.instruments["icc"].conf is Confidentiality.CONFIDENTIAL
    assert settings.directory.instruments["eio"].conf is Confidentiality.RESTRICTED
    notes = unreachable(settings.directory)
    assert len(notes) == 1 and notes[0].startswith("instruments.icc.conf: requests via icc "
                                                   "are confidential, and ua-pgo list no "
                                                   "members")
    bad = copy.deepcopy(INSTRUMENTS)
    bad["icc"]["conf"] = "secret"
    with pytest.raises(ConfigError) as error:
        make_settings("sqlite+aiosqlite:///unused.db", instruments=bad)
    assert any(p.startswith("instruments.icc.conf: use \"confidential\" or \"restricted\"")
               for p in error.value.problems)
    bad["icc"]["cnf"] = "confidential"
    with pytest.raises(ConfigError) as error:
        make_settings("sqlite+aiosqlite:///unused.db", instruments=bad)
    assert "instruments.icc.cnf: unknown key; did you mean conf?" in error.value.problems


@pytest.mark.parametrize("name", ["liaisonbot.toml", "liaisonbot.example.toml"])
def test_check_config_on_the_shipped_configs_is_sound_with_a_note(name: str) -> None:
    done = subprocess.run([sys.executable, "-m", "liaisonbot.cli", "check-config", "--config",
                           str(ROOT / "config" / name)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].endswith(" offices)")  # sound
    note = [line for line in done.stdout.splitlines() if ": note: " in line]
    if name == "liaisonbot.toml":  # the demo keeps two offices without members
        assert len(note) == 1 and "instruments.icc.conf: requests via icc are confidential, " \
            "and ua-pgo, eurojust list no members" in note[0]


async def test_help_open_says_how_conf_works_in_the_readers_language(sqlite_url: str) -> None:
    bot = await _bot(sqlite_url)
    try:
        english = await bot.exec("!liaison help open", user="alice", room="icc")
        assert "a request via an instrument that makes it confidential (via:icc) is " \
            "confidential unless conf: says otherwise" in english
        french = await bot.exec("!liaison help open", user="claire", room="fr")
        assert "open CASE to:OFFICE" in french  # the usage line stays command words
        assert "conf:LEVEL vaut restricted ou confidential" in french
    finally:
        await bot.core.close()


def test_the_slack_form_names_kinds_in_the_channels_language() -> None:
    from liaisonbot.chat.slack import forms
    from liaisonbot.service.i18n import words

    view = forms.open_view(forms.Origin("T1", "C1", None), [("ba-spo", "BA SPO")], words("fr"))
    kind = next(b for b in view["blocks"] if b.get("block_id") == "kind")
    options = {o["value"]: o["text"]["text"] for o in kind["element"]["options"]}
    assert options["evidence"] == "preuves" and options["mla"] == "entraide judiciaire"


async def test_icc_request_to_two_offices_is_confidential_in_both(any_url: str) -> None:
    """``to:A,B`` with ``via:icc``: each parallel request is confidential by default; neither
    requested office's room nor the requesting room sees the particulars; the reply names
    both ids and says the notices once."""
    bot = await _bot(any_url)
    try:
        out = await bot.exec('!liaison open ICC-01/22 to:ba-spo,de-gba kind:surrender via:icc '
                             'basis:"Rome Statute art. 89" person:"Suspect M." '
                             "Arrest and surrender of the suspect", user="alice", room="icc")
        rooms = _in("console:icc", out) + _in("console:ba", out) + _in("console:de", out)
        assert "R-1 opened" in _in("console:ba", out) and "R-2 opened" in _in("console:de", out)
        for secret in ("Suspect M.", "Arrest and surrender", "Rome Statute art. 89"):
            assert secret not in rooms, secret
        assert "Suspect M." in _in("dm:console:katrin", out)
        assert "Suspect M." in _in("dm:console:bojan", out)
        reply = _blocks(out)[-1]
        assert reply.startswith("[console:icc] R-1, R-2 opened in parallel"), reply
        assert reply.count("are confidential unless conf: says otherwise") == 1, reply
        async with bot.core.uow() as uow:
            levels = [r.confidentiality for r in await uow.requests.all_for_case("ICC-01/22")]
        assert levels == [Confidentiality.CONFIDENTIAL] * 2
    finally:
        await bot.core.close()
