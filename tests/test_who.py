"""Points of contact (issue 26): ``who OFFICE`` and ``who`` in the console, in each reader's
language and zone; refusals; the facts behind them (``domain.contacts``)."""

from __future__ import annotations

import copy
import logging
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conftest import BASE_CONFIG, TestBot, make_settings, start_bot
from liaisonbot.domain.calendar import BusinessCalendar
from liaisonbot.domain.contacts import at_desk

#: Friday 4 December 2026, 19:00 in Berlin and Amsterdam (CET).
FRIDAY_19 = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
DE_GBA: dict[str, Any] = {
    "slug": "de-gba", "name": "Generalbundesanwalt", "timezone": "Europe/Berlin",
    "working_hours": "08:00-16:30", "working_days": "Mon-Fri", "holidays": "DE-BW",
    "country": "DE", "accepts_languages": ["de", "en"], "rooms": ["console:gba"],
    "members": ["console:katrin", "console:duty-gba"], "on_call": ["console:duty-gba"],
    "contacts": [
        {"name": "Dr. Katrin Vogel", "role": "liaison prosecutor", "user": "console:katrin",
         "phone": "+497215550123", "email": "katrin.vogel@gba-de.example.org",
         "languages": ["de", "en", "fr"]},
        {"name": "Lukas Brandt", "role": "duty prosecutor", "user": "console:duty-gba",
         "phone": "+497215550199", "languages": ["de", "en"]}]}
INSTRUMENTS = {
    "eio": {"name": "European Investigation Order (Directive 2014/41/EU)", "short": "EIO",
            "due": "120d"},
    "icc": {"name": "Request for cooperation (Rome Statute, Part 9)", "short": "ICC Part 9"}}
ROOT = Path(__file__).resolve().parent.parent
CONTACT_DETAILS = ("+497215550123", "katrin.vogel@gba-de.example.org", "+497215550199")


def _settings(url: str, **extra: Any) -> Any:
    offices = [*copy.deepcopy(BASE_CONFIG["offices"]), copy.deepcopy(DE_GBA)]
    offices[1].update(language="fr")  # ba-spo reads French here
    offices[2].update(language="uk", members=["console:olena"])  # ua-pgo reads Ukrainian
    return make_settings(url, offices=offices, instruments=INSTRUMENTS, **extra)


@pytest.fixture
async def desk(any_url: str) -> Any:
    bot = await start_bot(_settings(any_url), now=FRIDAY_19)
    yield bot
    await bot.core.close()


async def test_who_on_friday_evening_in_each_readers_language_and_zone(
        desk: TestBot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    en = await desk.exec("!liaison who de-gba", user="alice", room="icc")
    assert en.splitlines() == [
        "[console:icc] Generalbundesanwalt (de-gba), Germany",
        "    Local time Fri 2026-12-04 19:00 CET: closed; opens Mon 2026-12-07 08:00 CET "
        "(in 3 days).",
        "    Accepts requests in: German and English.",
        "    Points of contact:",
        "    - Dr. Katrin Vogel, liaison prosecutor: +497215550123, "
        "katrin.vogel@gba-de.example.org, console:katrin; works in German, English, and French",
        "    - Lukas Brandt, duty prosecutor: +497215550199, console:duty-gba; works in German "
        "and English",
        "    On call around the clock: Lukas Brandt (console:duty-gba)",
        "    Public holidays in the next 30 days: Fri 2026-12-25, Sat 2026-12-26, "
        "Fri 2027-01-01",
        "    Instruments it receives (via:): eio, icc (ICC Part 9)"]
    # Kyiv reads the opening in its own zone (09:00 EET is 08:00 in Berlin), in Ukrainian.
    uk = await desk.exec("!liaison who de-gba", user="olena", room="ua")
    assert "[console:ua] Generalbundesanwalt (de-gba), Німеччина" in uk
    assert ("Місцевий час пт, 4 груд. 2026, 19:00 CET: зачинено; відкриється пн, 7 груд. "
            "2026, 09:00 EET (через 3 дні).") in uk
    assert "- Dr. Katrin Vogel, liaison prosecutor: +497215550123" in uk
    assert "робочі мови: німецька, англійська і французька" in uk
    fr = await desk.exec("!liaison who de-gba", user="bojan", room="ba")
    assert "[console:ba] Generalbundesanwalt (de-gba), Allemagne" in fr
    assert ("Heure locale ven. 4 déc. 2026, 19:00 CET : fermé ; ouvre lun. 7 déc. 2026, "
            "08:00 CET (dans 3 jours).") in fr
    assert "Jours fériés sur les 30 jours à venir : ven. 25 déc. 2026" in fr
    # Answered to the actor's room only; contact details never reach the bot's logs (the
    # drivers' are held at WARNING: test_contact_details_stay_out_of_the_logs).
    printed = en + uk + fr
    assert "[console:gba]" not in printed and "[dm:" not in printed
    ours = [r for r in caplog.records if r.name.startswith("liaisonbot")]
    assert ours  # the command was logged…
    for record in ours:  # …without its answer
        assert not any(detail in str(record.__dict__) for detail in CONTACT_DETAILS)


def test_contact_details_stay_out_of_the_logs(tmp_path: Path) -> None:
    """The real command at LIAISONBOT_LOG_LEVEL=DEBUG: stdout has the answer, stderr (the
    logs, drivers included) none of it."""
    config = tmp_path / "demo.toml"
    config.write_text((ROOT / "config" / "liaisonbot.toml").read_text().replace(
        "sqlite+aiosqlite:///var/liaisonbot.db", f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"))
    done = subprocess.run(
        [sys.executable, "-m", "liaisonbot.cli", "console", "--config", str(config), "--now",
         "2026-12-04T19:00+01:00"], input="!liaison who de-gba\n!liaison who\n",
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "LIAISONBOT_LOG_LEVEL": "DEBUG"})
    assert done.returncode == 0, done.stderr
    assert "+497215550123" in done.stdout and "Dr. Katrin Vogel" in done.stdout
    assert '"verb": "who"' in done.stderr  # logged, as every command is
    for detail in ("+497215550123", "katrin.vogel@gba-de.example.org", "Katrin"):
        assert detail not in done.stderr


async def test_who_alone_lists_every_office_one_line_each(desk: TestBot) -> None:
    out = await desk.exec("!liaison who", user="alice", room="icc")
    lines = out.splitlines()
    assert lines[0] == "[console:icc] Offices now (their local time; openings in your time):"
    assert lines[-1] == "    who OFFICE shows its points of contact."
    assert lines[1:-1] == [
        "    - ICC OTP (icc-otp): Fri 19:00 CET, closed; opens Mon 2026-12-07 09:00 CET "
        "(in 3 days)",
        "    - BA SPO (ba-spo): Fri 19:00 CET, closed; opens Mon 2026-12-07 08:00 CET "
        "(in 3 days)",
        "    - UA PGO (ua-pgo): Fri 20:00 EET, closed; opens Mon 2026-12-07 08:00 CET "
        "(in 3 days)",
        "    - Generalbundesanwalt (de-gba): Fri 19:00 CET, closed; opens Mon 2026-12-07 08:00 "
        "CET (in 3 days)"]
    assert not any(detail in out for detail in CONTACT_DETAILS)
    # Monday morning, Kyiv reads the same list in Ukrainian: who is open until when.
    desk.clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    uk = await desk.exec("!liaison who", user="olena", room="ua")
    assert "- ICC OTP (icc-otp): пн, 10:00 CET, відкрито до пн, 7 груд. 2026, 18:30 EET" in uk
    assert len(uk.splitlines()) == 6


async def test_who_unknown_office_and_extra_words_are_refused_in_one_sentence(
        desk: TestBot) -> None:
    assert await desk.exec("!liaison who nowhere", user="alice", room="icc") == (
        "[console:icc] There is no office 'nowhere'; the offices are icc-otp, ba-spo, ua-pgo, "
        "de-gba.")
    assert await desk.exec("!liaison who nowhere", user="bojan", room="ba") == (
        "[console:ba] Il n’y a pas de bureau 'nowhere' ; les bureaux sont icc-otp, ba-spo, "
        "ua-pgo, de-gba.")
    assert await desk.exec("!liaison who de-gba icc-otp", user="alice", room="icc") == (
        "[console:icc] Name one office, or none for all of them. Use: who [OFFICE]")
    assert "who [OFFICE]" in await desk.exec("!liaison help", user="alice", room="icc")


async def test_contact_details_only_for_members_of_a_configured_office(desk: TestBot) -> None:
    for line in ("!liaison who de-gba", "!liaison who"):
        unbound = await desk.exec(line, user="alice", room="console:elsewhere")
        assert unbound == ("[console:elsewhere] This room is not bound to any office, so only "
                           "help works here.")
        stranger = await desk.exec(line, user="mallory", room="icc")
        assert stranger == "[console:icc] Only the listed members of ICC OTP act for it; ask " \
                           "one of them."


async def test_open_office_and_a_holiday(desk: TestBot) -> None:
    desk.clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))  # Monday 10:00 in Berlin
    opened = await desk.exec("!liaison who de-gba", user="alice", room="icc")
    assert "Local time Mon 2026-12-07 10:00 CET: open until Mon 2026-12-07 16:30 CET " \
           "(in 6 hours)." in opened
    desk.clock.set(datetime(2026, 12, 25, 9, 0, tzinfo=UTC))  # Christmas Day, a Friday
    holiday = await desk.exec("!liaison who de-gba", user="alice", room="icc")
    assert "closed (public holiday); opens Mon 2026-12-28 08:00 CET" in holiday
    desk.clock.set(datetime(2027, 2, 1, 9, 0, tzinfo=UTC))
    plain = await desk.exec("!liaison who ua-pgo", user="alice", room="icc")
    assert "No public holidays in the next 30 days." in plain
    assert "Accepts requests in: Ukrainian." in plain  # no list: the office's own language


# ---------------------------------------------------------------------- the facts

def test_at_desk_facts() -> None:
    settings = _settings("sqlite+aiosqlite:///x.db")
    directory = settings.directory
    gba = directory.office("de-gba")
    assert gba is not None
    friday = at_desk(directory, gba, FRIDAY_19)
    assert not friday.open_now and friday.closes_at is None
    assert friday.opens_at == datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    assert friday.local_now.hour == 19
    assert friday.holidays == (date(2026, 12, 25), date(2026, 12, 26), date(2027, 1, 1))
    assert [p.contact.name if p.contact else None for p in friday.on_call] == ["Lukas Brandt"]
    assert [i.slug for i in friday.instruments] == ["eio", "icc"]  # no scope yet: all
    monday = at_desk(directory, gba, datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    assert monday.open_now and monday.opens_at is None
    assert monday.closes_at == datetime(2026, 12, 7, 15, 30, tzinfo=UTC)


def test_holidays_within_counts_the_days_after_today() -> None:
    days = {date(2026, 12, 25), date(2027, 1, 3), date(2027, 1, 4)}
    calendar = BusinessCalendar(tz=ZoneInfo("Europe/Berlin"), opens=time(8),
                                is_holiday=days.__contains__)
    assert calendar.holidays_within(date(2026, 12, 4), 30) == (date(2026, 12, 25),
                                                                date(2027, 1, 3))
    assert calendar.holidays_within(date(2026, 12, 25), 0) == (date(2026, 12, 25),)
