"""Languages on the real test servers (issue 14): one card and one nudge per language on Slack
(FakeSlack behind the real Bolt endpoint) and on Matrix (a real Synapse)."""

# ruff: noqa: F811  (the synapse fixture is imported by name)
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import test_slack_harness
from liaisonbot.service.ports import ManualClock
from support.poll import eventually
from support.synapse import PartnerClient, SynapseServer, synapse  # noqa: F401
from test_matrix_helpers import office, register_bot, running_bot, settings_for, wait_joined
from test_slack_harness import all_text

LANGUAGES = {"icc": "en", "spo": "fr", "desk": "uk"}
#: Monday 4 January 2027, 10:00 in Amsterdam: the offices are open.
MONDAY = datetime(2027, 1, 4, 9, tzinfo=UTC)


@pytest.fixture
def slack_in_languages(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Slack harness's offices with a language each: ICC English, SPO French, and the
    third office Ukrainian (moved to a Slack channel)."""
    plain = test_slack_harness.settings_dict

    def with_languages(*args: Any, **kw: Any) -> dict[str, Any]:
        data = plain(*args, **kw)
        for entry in data["offices"]:
            entry["language"] = LANGUAGES[entry["slug"]]
            if entry["slug"] == "desk":
                entry["rooms"] = ["slack:C0UA"]
        return data

    monkeypatch.setattr(test_slack_harness, "settings_dict", with_languages)


@pytest.mark.usefixtures("slack_in_languages")
async def test_slack_card_and_nudge_in_each_language(tmp_path: Path) -> None:
    async with test_slack_harness.running_bot(tmp_path) as bot:
        bot.clock.offset = MONDAY - datetime.now(UTC)
        # One after the other: Bolt acks first, so two commands in flight race for R-1.
        for text, room in (("open ICC-01/14 to:spo due:1d Relevés bancaires", "C0SPO"),
                           ("open ICC-01/14 to:desk due:1d Перехоплення", "C0UA")):
            status, _, _ = await bot.command(text)
            assert status == 200
            await bot.slack.wait_for(lambda room=room: bot.cards(room), 20)
        await bot.slack.wait_for(lambda: len(bot.cards("C0ICC")) == 2, 20)
        await bot.settled()
        fr, uk = bot.cards("C0SPO")[-1], bot.cards("C0UA")[-1]
        fr_blocks, uk_blocks = json.dumps(fr["blocks"], ensure_ascii=False), \
            json.dumps(uk["blocks"], ensure_ascii=False)
        assert "R-1 ouverte : ICC-01/14, informations, ICC OTP → BA SPO, échéance mar. 5 janv. " \
            "2027, 17:30 CET (dans " in fr["text"]
        assert "Objet : Relevés bancaires" in fr_blocks
        assert '"text": "Accuser réception"' in fr_blocks  # the button's label; its action stays
        assert '"action_id": "lb_ack"' in fr_blocks
        assert "R-2 відкрито: ICC-01/14, інформація від ICC OTP до Console desk, строк вт, " \
            "5 січ. 2027, 17:30 CET (через " in uk["text"]
        assert "Суть запиту: Перехоплення" in uk_blocks
        assert '"text": "Підтвердити отримання"' in uk_blocks
        icc = " ".join(all_text(m) for m in bot.cards("C0ICC"))
        assert "R-1 opened: ICC-01/14, information from ICC OTP to BA SPO, due Tue 2027-01-05 " \
            "17:30 CET (in " in icc
        assert '"text": "Withdraw"' in icc and "Summary: Relevés bancaires" in icc
        # Wednesday morning: both are a business day late; each room is reminded in its language.
        bot.clock.offset = datetime(2027, 1, 6, 8, 30, tzinfo=UTC) - datetime.now(UTC)
        await bot.core.ticker.tick()
        await bot.slack.wait_for(lambda: any("Relance" in m.get("text", "")
                                             for m in bot.slack.messages("C0SPO"))
                                 and any("Нагадування" in m.get("text", "")
                                         for m in bot.slack.messages("C0UA")), 5)
        await bot.settled()
        nudge_fr = next(m for m in bot.slack.messages("C0SPO") if "Relance" in m.get("text", ""))
        nudge_uk = next(m for m in bot.slack.messages("C0UA")
                        if "Нагадування" in m.get("text", ""))
        assert "Relance n° 1 : R-1 (ICC-01/14, informations, autorité requérante : ICC OTP) " \
            "était attendue pour le mar. 5 janv. 2027, 17:30 CET (il y a 16 heures) ; " \
            "retard : 1 jour ouvré." in nudge_fr["text"]
        assert "Нагадування № 1: строк виконання R-2 (ICC-01/14, інформація від ICC OTP) " \
            "сплив вт, 5 січ. 2027, 17:30 CET (16 годин тому); прострочення: 1 робочий день." \
            in nudge_uk["text"]
        notes = [m for m in bot.slack.messages("C0ICC") if "Reminder 1 sent to" in m["text"]]
        assert len(notes) == 2  # the English side's thread notes


def _notice(pred: Any) -> Any:
    return lambda e: e.source["content"].get("msgtype") == "m.notice" and pred(e)


@pytest.mark.synapse
async def test_matrix_card_and_nudge_in_each_language(synapse: SynapseServer,
                                                      tmp_path: Path) -> None:
    bot = await register_bot(synapse)
    people = {}
    for name in ("alice", "claire", "olena"):
        user = await synapse.register(name + "-" + tmp_path.name[-6:].replace("_", ""))
        people[name] = await PartnerClient.login(synapse, user, tmp_path / name)
    alice, claire, olena = people["alice"], people["claire"], people["olena"]
    rooms = {name: await client.create_room(name, encrypted=False, invite=[bot.user_id])
             for name, client in people.items()}
    settings = settings_for(synapse, bot, tmp_path, offices=[
        office("icc", rooms["alice"], [alice.user_id], name="ICC OTP"),
        office("pnat", rooms["claire"], [claire.user_id], name="PNAT", language="fr"),
        office("pgo", rooms["olena"], [olena.user_id], name="OPG", language="uk")])
    clock = ManualClock(MONDAY)
    try:
        async with running_bot(settings, bot, clock=clock) as running:
            for room in rooms.values():
                await wait_joined(running.platform, room)
            await alice.send_text(rooms["alice"], "!liaison open ICC-01/14 to:pnat due:1d "
                                  "Témoignages")
            card_fr = await claire.wait_for_message(
                rooms["claire"], _notice(lambda e: "R-1 ouverte" in e.body), timeout=30)
            await alice.send_text(rooms["alice"], "!liaison open ICC-01/14 to:pgo due:1d "
                                  "Свідчення")
            card_uk = await olena.wait_for_message(
                rooms["olena"], _notice(lambda e: "R-2 відкрито" in e.body), timeout=30)
            html_fr = card_fr.source["content"]["formatted_body"]
            html_uk = card_uk.source["content"]["formatted_body"]
            assert "R-1 ouverte : ICC-01/14, informations, ICC OTP → PNAT, échéance mar. 5 janv. " \
                "2027, 17:30 UTC (dans 32 heures)" in card_fr.body
            assert "<blockquote>" in html_fr and "Objet : Témoignages" in html_fr
            assert "ouverte · échéance mar. 5 janv. 2027" in html_fr
            assert "<blockquote>" in html_uk and "Суть запиту: Свідчення" in html_uk
            assert "відкритий · строк вт, 5 січ. 2027, 17:30 UTC" in html_uk
            # Wednesday morning: one nudge per language, in each requested room.
            clock.set(datetime(2027, 1, 6, 10, tzinfo=UTC))
            await running.core.ticker.tick()
            nudge_fr = await claire.wait_for_message(
                rooms["claire"], _notice(lambda e: "Relance n° 1" in e.body), timeout=30)
            nudge_uk = await olena.wait_for_message(
                rooms["olena"], _notice(lambda e: "Нагадування № 1" in e.body), timeout=30)
            assert "retard : 1 jour ouvré" in nudge_fr.body
            assert "прострочення: 1 робочий день" in nudge_uk.body
            assert "Relance n° 1 : R-1" in nudge_fr.source["content"]["formatted_body"]

            async def drained() -> bool:
                async with running.core.uow() as uow:
                    return await uow.outbox.backlog() == 0
            await eventually(drained, timeout=20, what="outbox drained")
    finally:
        for client in people.values():
            await client.close()
