"""The case board in each office's language (issues 14 and 15): a French office's user sees
the board in French, a Ukrainian office's in Ukrainian (headings, filters, dates, plurals, the
chart, the audit check), an English office's stays English; CSV columns stay English."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from test_board import Board, make_board

LANGUAGES = {"ba-spo": "fr", "ua-pgo": "uk"}


@pytest.fixture
async def board(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Board]:
    async for made in make_board(sqlite_url, monkeypatch, languages=LANGUAGES):
        yield made


async def _page(board: Board, account: str, path: str) -> str:
    async with await board.sign_in(account) as http:
        status, body = await board.page(http, path)
    assert status == 200, body
    return body


def _without_tags(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


async def test_a_french_office_sees_the_board_in_french(board: Board) -> None:
    async with await board.sign_in("bojan") as http:
        _, cases = await board.page(http, "/board/ba-spo/")
        _, case = await board.page(http, "/board/ba-spo/case?ref=ICC-01/14")
        _, card = await board.page(http, "/board/ba-spo/R-1")
        _, partners = await board.page(http, "/board/ba-spo/partners")
        _, contacts = await board.page(http, "/board/ba-spo/contacts")
        _, filtered = await board.page(http, "/board/ba-spo/case?ref=ICC-01/14&status=closed")
        bad_status, bad = await board.page(http, "/board/ba-spo/case?ref=bad ref")
        other_status, other = await board.page(http, "/board/icc-otp/")
        csv_text = await (await http.get(board.base + "/board/ba-spo/case.csv?ref=ICC-01/14")
                          ).text()
    for page in (cases, case, card, partners, contacts, filtered, bad, other):
        assert '<html lang="fr">' in page
    text = _without_tags(contacts)
    assert "BA SPO : contacts des partenaires" in text
    assert "Nom Fonction Téléphone Courriel Messagerie Langues" in text
    assert "UA PGO (ua-pgo), Ukraine" in text and "ukrainien et anglais" in text
    assert "Heure locale lun. 30 nov. 2026, 10:00 CET : ouvert jusqu’à lun. 30 nov. 2026, " \
        "17:30 CET" in text
    text = _without_tags(cases)
    assert "<title>BA SPO : affaires · liaisonbot</title>" in cases
    assert "BA SPO : affaires" in text and " 2 affaires " in text  # a plural
    assert "Affaire Demandes En cours En retard" in text  # the table's headings
    assert "Télécharger le CSV" in text and "Se déconnecter" in text
    assert "Heures exprimées en Europe/Sarajevo · situation au lun. 30 nov. 2026, 10:00 CET" \
        in text  # a date, Babel's French, in the office's zone
    assert "Download CSV" not in cases and ": cases" not in cases and "Sign out" not in cases
    text = _without_tags(case)
    assert "Affaire ICC-01/14" in text and " 2 demandes " in text
    # The filters: labels, "any", the statuses by their French names (values stay the codes).
    assert "Statut" in text and "Autorité partenaire" in text and "Filtrer" in text
    assert '<option value="">indifférent</option>' in case
    assert '<option value="acknowledged">réception accusée</option>' in case
    assert "N° Requérante → requise Nature Statut Échéance Objet" in text
    assert "entraide judiciaire" in text  # R-1's kind (kind:mla)
    assert "jeu. 10 déc. 2026, 16:00 CET (dans 10 jours)" in text and "urgente" in text
    text = _without_tags(filtered)
    assert "Aucune demande de l’affaire ICC-01/14 à laquelle BA SPO est partie ne correspond " \
        "à ces filtres." in text
    text = _without_tags(card)
    assert "R-1 dans l’affaire ICC-01/14" in text and "Historique" in text
    # Kinds and levels in French too (issue 24); the typed words stay in the CSV.
    assert "Nature entraide judiciaire" in text and "Confidentialité diffusion restreinte" in text
    assert "nature : entraide judiciaire" in text  # the timeline's detail
    assert "Réponse Records attached in the secure channel" in text  # the card's label
    assert "réception accusée par console:bojan" in text  # the timeline's action
    assert "statut : ouverte → réception accusée" in text  # its detail
    assert "Chaîne d’audit : les 3 entrées de R-1 sont scellées" in text
    assert "Timeline" not in card and "Audit chain" not in card
    assert "par autorité partenaire</title>" in partners  # the chart's labels
    assert "<title>1 en cours</title>" in partners and "dans les délais : 100\xa0%" in partners
    assert "0,0 / 0,0" in partners and "100\xa0% (1/1)" in partners  # French numbers
    assert "share on time" not in partners and "open / overdue" not in partners
    # Sentences of messages.py: a bad filter and a page of another office.
    assert bad_status == 400 and "n&#39;est pas une référence d&#39;affaire" in bad
    assert other_status == 404 and "Cette page n&#39;existe pas" in other
    # The CSV download stays language-neutral, like export.
    assert csv_text.splitlines()[0] == ("id,case,kind,requesting,requested,status,urgent,"
                                        "confidentiality,created,due,summary")
    assert ",answered," in csv_text


async def test_a_ukrainian_office_sees_the_board_in_ukrainian(board: Board) -> None:
    async with await board.sign_in("olena") as http:
        _, cases = await board.page(http, "/board/ua-pgo/")
        _, case = await board.page(http, "/board/ua-pgo/case?ref=ICC-01/14")
        _, card = await board.page(http, "/board/ua-pgo/R-4")
        _, partners = await board.page(http, "/board/ua-pgo/partners")
    for page in (cases, case, card, partners):
        assert '<html lang="uk">' in page
    text = _without_tags(cases)
    assert "UA PGO: справи" in text and " 2 справи " in text  # the paucal plural
    assert "Справа Запити Відкриті Прострочені" in text
    assert "Час за поясом Europe/Kyiv · станом на пн, 30 лист. 2026, 11:00 EET" in text
    assert "Завантажити CSV" in text and "Вийти" in text
    text = _without_tags(case)
    assert "Справа ICC-01/14" in text and " 1 запит " in text  # the singular
    assert "Статус" in text and "Орган-партнер" in text and "Правовий інструмент" in text
    assert "Застосувати фільтр" in text and '<option value="">усі</option>' in case
    assert '<option value="open">відкритий</option>' in case
    assert "чт, 3 груд. 2026, 18:00 EET (через 3 дні)" in text
    text = _without_tags(card)
    assert "R-4 у справі ICC-01/14" in text and "Хронологія" in text
    assert "Строк виконання чт, 3 груд. 2026, 18:00 EET (через 3 дні)" in text
    assert "відкрито — console:alice" in text
    assert "Ланцюжок аудиту: 1 запис щодо R-4 засвідчено" in text
    assert "<title>1 відкритий</title>" in partners and "<title>0 прострочених</title>" in partners
    assert "частка виконаних вчасно" in partners
    for english in ("Download CSV", "Sign out", "Partners", "Timeline", "Filter", "any"):
        assert english not in _without_tags(cases + case + card + partners).split(" ")


async def test_an_english_office_stays_english(board: Board) -> None:
    async with await board.sign_in("alice") as http:
        _, cases = await board.page(http, "/board/icc-otp/")
        _, case = await board.page(http, "/board/icc-otp/case?ref=ICC-01/14")
        _, card = await board.page(http, "/board/icc-otp/R-1")
    for page in (cases, case, card):
        assert '<html lang="en">' in page
    assert "ICC OTP: cases" in cases and " 1 case " in _without_tags(cases)
    assert " 3 requests " in _without_tags(case) and '<option value="">any</option>' in case
    assert '<option value="acknowledged">acknowledged</option>' in case
    assert "Mon 2026-11-30 10:00 CET" in cases  # the contract's English date
    assert "(in 10 days)" in case
    assert "Audit chain: the 3 entries of R-1 are sealed and linked into the history; none " \
        "was changed." in _without_tags(card)
    assert "<strong>answered</strong> by console:bojan" in card
