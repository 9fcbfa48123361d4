"""The case board over HTTP: sign-in (authorization code + PKCE, state, nonce, ID token
checks) against a fake issuer that can sign wrongly on demand; need-to-know per office and
member; cookies, headers, CSV, the audit check. SQLite and PostgreSQL for the queries."""

from __future__ import annotations

import base64
import copy
import html
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from conftest import BASE_CONFIG, TestBot, make_settings, start_bot
from liaisonbot.service.ports import ManualClock
from support.board import (
    ACCOUNTS,
    BA_UA_SUMMARY,
    CLIENT_ID,
    CLIENT_SECRET,
    CONFIDENTIAL_SUMMARY,
    SESSION_KEY,
    Served,
    client,
    free_port,
    query_of,
    seed,
    serve,
    web_config,
)
from support.fake_issuer import FakeIssuer
from support.insider import insider


class Board:
    """A seeded desk with the board served, a fake issuer, and a way to sign in."""

    def __init__(self, bot: TestBot, served: Served, issuer: FakeIssuer) -> None:
        self.bot, self.served, self.issuer = bot, served, issuer

    @property
    def base(self) -> str:
        return self.served.base

    async def start_sign_in(self, http: aiohttp.ClientSession,
                            path: str = "/board") -> dict[str, str]:
        response = await http.get(self.base + path, allow_redirects=False)
        assert response.status == 302, await response.text()
        location = response.headers["Location"]
        assert location.startswith(self.issuer.url + "/authorize?")
        return query_of(location)

    async def callback(self, http: aiohttp.ClientSession, params: dict[str, str],
                       account: str, *, state: str | None = None) -> aiohttp.ClientResponse:
        code = self.issuer.authorize(params, {"sub": account, **ACCOUNTS[account]})
        return await http.get(f"{self.base}/board/callback",
                              params={"code": code, "state": state or params["state"]},
                              allow_redirects=False)

    async def sign_in(self, account: str) -> aiohttp.ClientSession:
        http = client()
        params = await self.start_sign_in(http)
        response = await self.callback(http, params, account)
        assert response.status == 302, await response.text()
        return http

    async def page(self, http: aiohttp.ClientSession, path: str) -> tuple[int, str]:
        response = await http.get(self.base + path, allow_redirects=False)
        return response.status, await response.text()


INSTRUMENTS = {"eio": {"name": "European Investigation Order", "short": "EIO",
                       "source": "Directive 2014/41/EU", "ack_within": "7d", "due": "120d",
                       "requires": ["basis"]}}


async def make_board(url: str, monkeypatch: pytest.MonkeyPatch,
                     languages: dict[str, str] | None = None,
                     **web: Any) -> AsyncIterator[Board]:
    """The seeded board; ``languages`` sets offices' ``language`` (slug → code)."""
    monkeypatch.setenv("LIAISONBOT_WEB_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("LIAISONBOT_WEB_SESSION_KEY", SESSION_KEY)
    clock_holder: list[ManualClock] = []
    issuer = FakeIssuer(CLIENT_ID, CLIENT_SECRET, lambda: clock_holder[0].now())
    await issuer.start()
    port = free_port()
    offices = copy.deepcopy(BASE_CONFIG["offices"])
    for office in offices:
        office["language"] = (languages or {}).get(office["slug"], "en")
    settings = make_settings(url, web=web_config(issuer.url, f"http://127.0.0.1:{port}", **web),
                             instruments=INSTRUMENTS, offices=offices)
    bot = await start_bot(settings)
    clock_holder.append(bot.clock)
    await seed(bot)
    served = await serve(bot, port)
    try:
        yield Board(bot, served, issuer)
    finally:
        await served.close()
        await bot.core.close()
        await issuer.stop()


@pytest.fixture
async def board(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Board]:
    async for made in make_board(sqlite_url, monkeypatch):
        yield made


@pytest.fixture
async def any_board(any_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Board]:
    async for made in make_board(any_url, monkeypatch):
        yield made


# ------------------------------------------------------------------ sign-in and sessions

async def test_no_session_goes_straight_to_the_issuer_with_pkce_state_and_nonce(
        board: Board) -> None:
    async with client() as http:
        response = await http.get(board.base + "/board/icc-otp/case?ref=ICC-01/14",
                                  allow_redirects=False)
        assert response.status == 302
        params = query_of(response.headers["Location"])
        assert params["response_type"] == "code" and params["client_id"] == CLIENT_ID
        assert params["redirect_uri"] == board.base + "/board/callback"
        assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) >= 43
        assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32
        assert "Bank records" not in await response.text()
        cookie = response.headers["Set-Cookie"]
        assert "lb_login=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Secure" not in cookie  # plain http on loopback
        # The sign-in returns to where the user was going.
        back = await board.callback(http, params, "alice")
        assert back.status == 302
        assert back.headers["Location"] == "/board/icc-otp/case?ref=ICC-01/14"
        session_cookie = next(c for c in back.headers.getall("Set-Cookie") if "lb_session=" in c)
        assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
        assert "Max-Age=3600" in session_cookie
        status, body = await board.page(http, "/board/icc-otp/case?ref=ICC-01/14")
        assert status == 200 and "Bank records of X" in body
    # Secret sent with client_secret_basic, PKCE verifier sent with the code.
    call = board.issuer.token_calls[-1]
    assert call["basic"] and "client_secret" not in call["form"]
    assert call["form"]["code_verifier"]


async def test_client_secret_post(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async for board in make_board(sqlite_url, monkeypatch, token_auth="client_secret_post"):
        http = await board.sign_in("alice")
        await http.close()
        call = board.issuer.token_calls[-1]
        assert not call["basic"] and call["form"]["client_secret"] == CLIENT_SECRET


@pytest.mark.parametrize("tamper", [
    {"exp_delta": -600},                 # expired (beyond the leeway)
    {"sign_with": "stranger"},           # signed with a key not in the issuer's JWKS
    {"aud": "another-client"},           # for another audience
    {"iss": "https://evil.example"},     # from another issuer
    {"nonce": "replayed-nonce"},         # not the nonce of this sign-in
], ids=["expired", "wrong-signature", "wrong-audience", "wrong-issuer", "wrong-nonce"])
async def test_bad_id_tokens_are_refused(board: Board, tamper: dict[str, Any]) -> None:
    async with client() as http:
        params = await board.start_sign_in(http)
        board.issuer.tamper = tamper
        response = await board.callback(http, params, "alice")
        assert response.status == 400
        body = await response.text()
        assert "could not be completed" in body and "Traceback" not in body
        assert not any("lb_session=" in c for c in response.headers.getall("Set-Cookie", []))
        status, _ = await board.page(http, "/board/icc-otp/")
        assert status == 302  # still no session: back to the issuer


async def test_a_good_token_after_the_refusals_still_signs_in(board: Board) -> None:
    """The refusal test above is not vacuous: the same flow untampered succeeds."""
    http = await board.sign_in("alice")
    async with http:
        status, body = await board.page(http, "/board/icc-otp/")
        assert status == 200 and "ICC-01/14" in body


async def test_wrong_state_is_refused(board: Board) -> None:
    async with client() as http:
        params = await board.start_sign_in(http)
        response = await board.callback(http, params, "alice", state="x" * 43)
        assert response.status == 400
        assert not board.issuer.token_calls  # the code was never redeemed
        # A callback with no sign-in started here (no login cookie) is refused too.
    async with client() as other:
        response = await board.callback(other, params, "alice")
        assert response.status == 400


async def test_forged_and_tampered_cookies_are_refused(board: Board) -> None:
    http = await board.sign_in("alice")
    async with http:
        good = next(c for c in http.cookie_jar if c.key == "lb_session").value
        raw = bytearray(base64.urlsafe_b64decode(good))
        raw[-40] ^= 1
        tampered = base64.urlsafe_b64encode(bytes(raw)).decode()
        forged = Fernet(Fernet.generate_key()).encrypt(
            b'{"sub": "mallory", "offices": ["icc-otp", "ba-spo"], "ids": [], "exp": 9999999999}'
        ).decode()
        for value in (tampered, forged, "not-a-cookie", ""):
            async with aiohttp.ClientSession() as stranger:
                response = await stranger.get(board.base + "/board/icc-otp/",
                                              headers={"Cookie": f"lb_session={value}"},
                                              allow_redirects=False)
                assert response.status == 302, value
                assert response.headers["Location"].startswith(board.issuer.url)
                assert "ICC-01/14" not in await response.text()
        status, _ = await board.page(http, "/board/icc-otp/")
        assert status == 200


async def test_the_session_expires_and_logout_ends_it(board: Board) -> None:
    http = await board.sign_in("alice")
    async with http:
        assert (await board.page(http, "/board/icc-otp/"))[0] == 200
        board.bot.clock.set(board.bot.clock.now() + timedelta(minutes=61))
        assert (await board.page(http, "/board/icc-otp/"))[0] == 302
    http = await board.sign_in("alice")
    async with http:
        response = await http.post(board.base + "/board/logout", allow_redirects=False,
                                   headers={"Origin": board.base})
        assert response.status == 303
        assert response.headers["Location"].startswith(board.issuer.url + "/logout")
        assert (await board.page(http, "/board/icc-otp/"))[0] == 302
        # A logout posted from another site is refused.
        other = await http.post(board.base + "/board/logout", allow_redirects=False,
                                headers={"Origin": "https://evil.example"})
        assert other.status == 403



async def test_logout_revokes_the_session_on_the_server_and_needs_the_board_s_origin(
        any_board: Board) -> None:
    """A copied session cookie is over once its session logged out (the id is revoked in
    the database, so every replica knows); a logout with no Origin is refused unless the
    browser says ``Sec-Fetch-Site: same-origin``. Issue 22, item 5 (security findings)."""
    from liaisonbot.board.session import SESSION_COOKIE

    board = any_board
    http = await board.sign_in("alice")
    async with http:
        saved = next(c.value for c in http.cookie_jar if c.key == SESSION_COOKIE)
        assert (await board.page(http, "/board/icc-otp/"))[0] == 200
        for headers in ({}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                        {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"}):
            refused = await http.post(board.base + "/board/logout", allow_redirects=False,
                                      headers=headers)
            assert refused.status == 403, headers
        assert (await board.page(http, "/board/icc-otp/"))[0] == 200  # still signed in
        done = await http.post(board.base + "/board/logout", allow_redirects=False,
                               headers={"Sec-Fetch-Site": "same-origin"})
        assert done.status == 303
    async with client() as thief:  # the cookie copied before the logout, sent again
        replayed = await thief.get(board.base + "/board/icc-otp/", allow_redirects=False,
                                   cookies={SESSION_COOKIE: saved})
        assert replayed.status == 302  # to the issuer: no session
        assert replayed.headers["Location"].startswith(board.issuer.url)
    async with await board.sign_in("alice") as again:  # a new sign-in is a new session
        assert (await board.page(again, "/board/icc-otp/"))[0] == 200


async def test_headers_on_data_pages(board: Board) -> None:
    http = await board.sign_in("alice")
    async with http:
        response = await http.get(board.base + "/board/icc-otp/", allow_redirects=False)
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src" not in csp  # no scripts at all
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Server-Timing"].startswith("app;dur=")
        css = await http.get(board.base + "/board/static/board.css")
        assert css.status == 200 and "font-family" in await css.text()


async def test_https_base_url_makes_cookies_secure(sqlite_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    async for board in make_board(sqlite_url, monkeypatch):
        from liaisonbot.board.pages import Board as Pages
        from liaisonbot.config import WebSettings

        core = board.bot.core
        web = core.settings.web
        secure = WebSettings(**{**web.__dict__, "base_url": "https://liaison.example.org"})
        pages = Pages(web_settings=secure, directory=core.settings.directory, uow=core.uow,
                      clock=core.clock)
        from aiohttp.test_utils import make_mocked_request

        response = await pages._to_issuer(make_mocked_request("GET", "/board"))
        morsel = response.cookies["lb_login"]
        assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Lax"
        assert pages.oidc.redirect_uri == "https://liaison.example.org/board/callback"


# ------------------------------------------------------------------ need-to-know

async def test_need_to_know_per_office_and_member(any_board: Board) -> None:
    board = any_board
    alice = await board.sign_in("alice")
    ivan = await board.sign_in("ivan")
    bojan = await board.sign_in("bojan")
    olena = await board.sign_in("olena")
    nobody = await board.sign_in("nobody")
    async with alice, ivan, bojan, olena, nobody:
        # ICC: its case with three requests; nothing of BA↔UA, not even the case or a count.
        status, cases = await board.page(alice, "/board/icc-otp/")
        assert status == 200 and "ICC-01/14" in cases and "OP-2026-017" not in cases
        _, case = await board.page(alice, "/board/icc-otp/case?ref=ICC-01/14")
        assert {"R-1", "R-2", "R-4"} <= set(_refs(case)) and "R-3" not in _refs(case)
        assert CONFIDENTIAL_SUMMARY in case  # alice is a listed member of ICC
        _, case = await board.page(ivan, "/board/icc-otp/case?ref=ICC-01/14")
        assert CONFIDENTIAL_SUMMARY not in case and "(confidential" in case
        assert "Bank records of X" in case  # restricted summaries are shown to the office
        status, _ = await board.page(ivan, "/board/icc-otp/R-3")
        assert status == 404
        _, other_case = await board.page(alice, "/board/icc-otp/case?ref=OP-2026-017")
        assert BA_UA_SUMMARY not in other_case and "R-3" not in _refs(other_case)
        # Another office's board is not reachable by changing the URL.
        assert (await board.page(alice, "/board/ba-spo/"))[0] == 404
        # BA sees its side, the confidential summary (bojan is listed), and BA↔UA.
        _, ba_cases = await board.page(bojan, "/board/ba-spo/")
        assert "ICC-01/14" in ba_cases and "OP-2026-017" in ba_cases
        _, r2 = await board.page(bojan, "/board/ba-spo/R-2")
        assert CONFIDENTIAL_SUMMARY in r2 and "working on the protected witness" in r2
        _, r2 = await board.page(ivan, "/board/icc-otp/R-2")
        assert CONFIDENTIAL_SUMMARY not in r2 and "working on the protected witness" not in r2
        # UA: only what it is party to.
        _, ua_case = await board.page(olena, "/board/ua-pgo/case?ref=ICC-01/14")
        assert _refs(ua_case) == ["R-4"]
        assert (await board.page(olena, "/board/ua-pgo/R-1"))[0] == 404
        # No office in the token: nothing at all.
        status, empty = await board.page(nobody, "/board")
        assert status == 200 and "names no office" in empty and "ICC-01/14" not in empty
        assert (await board.page(nobody, "/board/icc-otp/"))[0] == 404


def _refs(html: str) -> list[str]:
    import re

    return sorted(set(re.findall(r">(R-\d+)</a>", html)))


async def test_case_filters_and_order(any_board: Board) -> None:
    board = any_board
    http = await board.sign_in("alice")
    async with http:
        _, page = await board.page(http, "/board/icc-otp/case?ref=ICC-01/14")
        order = [ref for ref in _ordered_refs(page)]
        assert order == ["R-2", "R-4", "R-1"]  # urgent pending, pending by due, answered
        _, page = await board.page(http, "/board/icc-otp/case?ref=ICC-01/14&status=answered")
        assert _ordered_refs(page) == ["R-1"]
        _, page = await board.page(http, "/board/icc-otp/case?ref=ICC-01/14&partner=ua-pgo")
        assert _ordered_refs(page) == ["R-4"]
        await board.bot.exec('!liaison open ICC-01/14 to:ba-spo via:eio basis:"art. 1" Records',
                             user="alice", room="icc")
        _, page = await board.page(http, "/board/icc-otp/case?ref=ICC-01/14&via=eio")
        assert _ordered_refs(page) == ["R-5"] and '<option value="eio" selected>' in page
        _, page = await board.page(http, "/board/icc-otp/case?ref=ICC-01/14&via=nope")
        assert _ordered_refs(page) == ["R-2", "R-4", "R-5", "R-1"]  # unknown filter: dropped
        status, page = await board.page(http, "/board/icc-otp/case?ref=not%20a%20case!")
        assert status == 400 and "is not a case reference" in page and "<main>" in page


def _ordered_refs(html: str) -> list[str]:
    import re

    return list(dict.fromkeys(re.findall(r">(R-\d+)</a>", html)))


async def test_counts_overdue_and_partners(board: Board) -> None:
    board.bot.clock.set(board.bot.clock.now() + timedelta(days=8))
    http = await board.sign_in("alice")
    async with http:
        _, cases = await board.page(http, "/board/icc-otp/cases.csv")
        assert cases.splitlines() == ["case,requests,open,overdue", "ICC-01/14,3,2,2"]
        _, partners = await board.page(http, "/board/icc-otp/partners")
        assert "<svg" in partners and "BA SPO" in partners and "100% (1/1)" in partners
        _, rows = await board.page(http, "/board/icc-otp/partners.csv")
        lines = rows.splitlines()
        assert lines[0].startswith("partner,open,overdue,ack_median_h")
        assert lines[1].startswith("ba-spo,1,1,0.0,") and lines[1].endswith(",1,1")
        assert lines[2] == "ua-pgo,1,1,,,,,0,0"


async def test_contacts_page_shows_what_who_says(board: Board) -> None:
    """The partners' contacts page: every office's points of contact, state and holidays, as
    ``who OFFICE`` says them in chat, for a signed-in user of a configured office."""
    http = await board.sign_in("bojan")
    async with http:
        _, cases = await board.page(http, "/board/ba-spo/")
        status, page = await board.page(http, "/board/ba-spo/contacts")
        foreign, _ = await board.page(http, "/board/icc-otp/contacts")
    assert 'href="/board/ba-spo/contacts"' in cases  # in the navigation
    assert status == 200 and foreign == 404
    assert "<h1>BA SPO: partners' contacts</h1>" in page
    assert '<h2 id="office-icc-otp">ICC OTP (icc-otp)</h2>' in page
    assert '<h2 id="office-ua-pgo">UA PGO (ua-pgo), Ukraine</h2>' in page
    assert "<td>Alice Martin</td><td>liaison prosecutor</td>" in page
    assert '<a href="tel:+31705550142">+31705550142</a>' in page
    assert '<a href="mailto:alice.martin@icc-otp.example.org">' in page
    assert "<td>English and French</td>" in page and "Accepts requests in: English and French." \
        in page
    # Monday 10:00 in Amsterdam, read in Sarajevo's zone (the same hour).
    assert ('<p class="open">Local time Mon 2026-11-30 10:00 CET: open until Mon 2026-11-30 '
            "17:30 CET (in 8 hours).</p>") in page
    assert "Public holidays in the next 30 days: Fri 2026-12-25, Sat 2026-12-26" in page
    assert "No instruments" not in page and "Instruments it receives (via:): eio" in page
    anonymous = client()
    async with anonymous:
        response = await anonymous.get(board.base + "/board/ba-spo/contacts",
                                       allow_redirects=False)
    assert response.status == 302 and response.headers["Location"].startswith(board.issuer.url)


async def test_case_csv_hides_confidential_summaries_and_formulas(board: Board) -> None:
    await board.bot.exec("!liaison open ICC-01/14 to:ba-spo =HYPERLINK(\"x\")", user="alice",
                         room="icc")
    ivan = await board.sign_in("ivan")
    async with ivan:
        response = await ivan.get(board.base + "/board/icc-otp/case.csv?ref=ICC-01/14")
        assert response.headers["Content-Disposition"].startswith("attachment;")
        body = await response.text()
        assert CONFIDENTIAL_SUMMARY not in body and "Bank records of X" in body
        assert "'=HYPERLINK" in body
        assert BA_UA_SUMMARY not in body


async def test_request_page_timeline_and_audit_check(board: Board) -> None:
    http = await board.sign_in("alice")
    async with http:
        status, page = await board.page(http, "/board/icc-otp/R-1")
        assert status == 200
        steps = [page.index(f"<strong>{action}</strong>")
                 for action in ("opened", "acknowledged", "answered")]
        assert steps == sorted(steps)
        assert "Records attached in the secure channel" in page
        assert "CET" in page  # in the viewer office's zone (Amsterdam)
        assert "none was changed" in page
        async with insider(board.bot.core.engine) as conn:
            await conn.execute(text("UPDATE history SET actor = 'console:mallory' "
                                    "WHERE request_id = 1 AND action = 'acknowledged'"))
        _, page = await board.page(http, "/board/icc-otp/R-1")
        assert "Audit chain broken at entry" in page and "changed after it was written" in page
        _, other = await board.page(http, "/board/icc-otp/R-4")
        assert "was not changed" in other  # the chain around R-4 (one entry) still holds


async def test_timezone_is_the_viewer_office_s(board: Board) -> None:
    alice = await board.sign_in("alice")
    bojan = await board.sign_in("bojan")
    async with alice, bojan:
        _, icc = await board.page(alice, "/board/icc-otp/R-1")
        _, ba = await board.page(bojan, "/board/ba-spo/R-1")
        assert "Times in Europe/Amsterdam" in icc and "Times in Europe/Sarajevo" in ba


async def test_user_text_is_escaped_and_long_cases_are_paged(board: Board,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from liaisonbot.board import pages

    await board.bot.exec('!liaison open ICC-01/14 to:ba-spo <script>alert(1)</script> & "x"',
                         user="alice", room="icc")
    monkeypatch.setattr(pages, "CASE_PAGE_SIZE", 2)
    http = await board.sign_in("alice")
    async with http:
        _, page = await board.page(http, "/board/icc-otp/R-5")
        assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in page
        _, case = await board.page(http, "/board/icc-otp/case?ref=ICC-01/14")
        assert _ordered_refs(case) == ["R-2", "R-4"] and "Requests 1–2 of 4" in case
        assert "Previous page" not in case and "page=2" in case
        _, case = await board.page(http, "/board/icc-otp/case?ref=ICC-01/14&page=2")
        assert _ordered_refs(case) == ["R-5", "R-1"] and "Requests 3–4 of 4" in case
        assert "Next page" not in case and "Previous page" in case
        _, csv_text = await board.page(http, "/board/icc-otp/case.csv?ref=ICC-01/14")
        assert len(csv_text.splitlines()) == 5  # the download has every page


async def test_unreachable_issuer_gets_one_sentence(sqlite_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    async for board in make_board(sqlite_url, monkeypatch):
        await board.issuer.stop()
        async with client() as http:
            status, body = await board.page(http, "/board")
        assert status == 503 and "cannot be reached right now" in body
        assert "Traceback" not in body


async def test_cases_page_is_cut_but_csv_is_whole(board: Board,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from liaisonbot.board import pages

    monkeypatch.setattr(pages, "CASES_PAGE_LIMIT", 1)
    http = await board.sign_in("bojan")
    async with http:
        _, page = await board.page(http, "/board/ba-spo/")
        assert "The 1 cases with the most overdue and open requests are shown, of 2" in page
        assert ("ICC-01/14" in page) != ("OP-2026-017" in page)
        _, csv_text = await board.page(http, "/board/ba-spo/cases.csv")
        assert "ICC-01/14" in csv_text and "OP-2026-017" in csv_text


async def test_a_discovery_document_for_another_issuer_is_refused(board: Board) -> None:
    board.issuer.discovery_changes = {"issuer": "https://evil.example"}
    async with client() as http:
        status, body = await board.page(http, "/board")
    assert status == 503 and "cannot be reached right now" in body
    board.issuer.discovery_changes = {"jwks_uri": None}
    async with client() as http:
        assert (await board.page(http, "/board"))[0] == 503
    board.issuer.discovery_changes = {}
    http = await board.sign_in("alice")  # the board did not keep a bad document
    await http.close()


async def test_a_confidential_request_page_asks_the_policy_for_every_history_key(
        any_board: Board) -> None:
    """A confidential request that went through every step the desk records (particulars on
    open, incomplete and complete, an ack with a note and a date, an extension and a snooze
    with reasons, an assignment, a file in its thread, an answer): its page shows each
    history value that the visibility policy calls substance only to a listed member. The
    keys and values are read from the entries the desk wrote, not from a list kept here, so a
    key a later release adds is covered (an unknown key counts as substance: it fails
    closed). Issue 22, item 1."""
    from liaisonbot.domain.visibility import ENVELOPE
    from liaisonbot.service.desk import Actor

    board = any_board
    bot = board.bot
    steps = [
        ("alice", "icc", '!liaison open ICC-02/05 to:ba-spo conf:confidential '
                         'person:"Dragan Nikolic" measure:"hearing of the witness" '
                         'basis:"Rome Statute art. 93(1)(b)" Hearing of the protected witness'),
        ("bojan", "ba", "!liaison incomplete R-5 the signed order of the pre-trial chamber"),
        ("alice", "icc", "!liaison complete R-5 order sent through the embassy"),
        ("bojan", "ba", "!liaison ack R-5 eta:20d scheduling with the witness unit"),
        ("bojan", "ba", "!liaison extend R-5 30d the witness is abroad until January"),
        ("alice", "icc", "!liaison snooze R-5 5d waiting for the chamber decision"),
        ("bojan", "ba", "!liaison assign R-5 console:bojan"),
    ]
    for user, room, line in steps:
        out = await bot.exec(line, user=user, room=room)
        assert "R-5" in out, (line, out)
    async with bot.core.uow() as uow:
        links = await uow.threads.for_request(5)
    root = next(link.thread_root for link in links if link.room == "console:ba")
    assert await bot.core.desk.relay(Actor("console:bojan", "console:ba", thread_root=root),
                                     "the transcript is sealed",
                                     files=[("w7-statement-transcript.pdf", 4096)])
    await bot.exec("!liaison answer R-5 Hearing held on 14 December, transcript sealed",
                   user="bojan", room="ba")
    async with bot.core.uow(read_only=True) as uow:
        entries = await uow.history.for_request(5)
    substance: set[str] = set()
    for entry in entries:
        for key, value in entry.detail.items():
            if key in ENVELOPE:
                continue
            for part in value if isinstance(value, list) else [value]:
                text = part.get("name") if isinstance(part, dict) else part
                if isinstance(text, str) and len(text) > 3:
                    substance.add(text)
    keys = {key for entry in entries for key in entry.detail}
    assert {"person", "measure", "basis", "missing", "note", "reason", "files"} <= keys, keys
    assert "w7-statement-transcript.pdf" in substance and "Dragan Nikolic" in substance
    alice, ivan, bojan, olena = [await board.sign_in(name)
                                 for name in ("alice", "ivan", "bojan", "olena")]
    async with alice, ivan, bojan, olena:
        for member, office in ((alice, "icc-otp"), (bojan, "ba-spo")):
            status, page = await board.page(member, f"/board/{office}/R-5")
            assert status == 200
            shown = html.unescape(page)
            assert [s for s in substance if s not in shown] == []
        status, page = await board.page(ivan, "/board/icc-otp/R-5")  # ICC, not listed
        assert status == 200
        shown = html.unescape(page)
        assert [s for s in substance if s in shown] == []
        assert "(confidential" in shown and "ICC-02/05" in shown  # masked, envelope kept
        status, _ = await board.page(olena, "/board/ua-pgo/R-5")  # a third office
        assert status == 404


async def test_parallel_requests_together_for_the_requesting_office_only(
        any_board: Board) -> None:
    """Issue 24: ``open … to:A,B`` shows its requests together on the requesting office's
    case page; each requested office sees its own alone, and nothing of the other."""
    board = any_board
    out = await board.bot.exec("!liaison open OP-7 to:ba-spo,ua-pgo Phone records of Y",
                               user="alice", room="icc")
    assert "R-5, R-6 opened in parallel" in out
    alice = await board.sign_in("alice")
    bojan = await board.sign_in("bojan")
    olena = await board.sign_in("olena")
    async with alice, bojan, olena:
        _, page = await board.page(alice, "/board/icc-otp/case?ref=OP-7")
        assert set(_refs(page)) == {"R-5", "R-6"}
        assert page.count("Opened in parallel: R-5, R-6") == 2
        _, page = await board.page(bojan, "/board/ba-spo/case?ref=OP-7")
        assert _refs(page) == ["R-5"] and "parallel" not in page and "R-6" not in page
        _, page = await board.page(olena, "/board/ua-pgo/case?ref=OP-7")
        assert _refs(page) == ["R-6"] and "parallel" not in page and "R-5" not in page
        status, _ = await board.page(olena, "/board/ua-pgo/R-5")
        assert status == 404
