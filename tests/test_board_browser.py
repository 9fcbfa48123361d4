"""The case board in a real browser (Debian's headless Chromium, driven by Playwright) against
a real OpenID Provider (node-oidc-provider, pinned in tests/support/oidc): board → the
provider's login → back → pages, with JavaScript off, for each office's users. Screenshots go
to var/test-artifacts/board/ (the path is printed)."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import TestBot, make_settings, start_bot
from support.board import (
    ACCOUNTS,
    BA_UA_SUMMARY,
    CLIENT_ID,
    CLIENT_SECRET,
    CONFIDENTIAL_SUMMARY,
    SESSION_KEY,
    Served,
    free_port,
    seed,
    serve,
    web_config,
)
from support.oidc_provider import oidc_provider

CHROMIUM = os.environ.get("LIAISONBOT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "var" / "test-artifacts" / "board"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() or shutil.which("node") is None,
    reason="needs /usr/bin/chromium (apt-get install chromium) and node (scripts/test.sh "
           "installs both)")


@dataclass
class Desk:
    bot: TestBot
    served: Served
    issuer: str
    browser: Any

    @property
    def base(self) -> str:
        return self.served.base

    async def sign_in(self, login: str, path: str = "/board") -> Any:
        """A fresh browser profile (JavaScript off) signs in as ``login``; returns the page."""
        context = await self.browser.new_context(java_script_enabled=False)
        page = await context.new_page()
        await page.goto(self.base + path)
        assert page.url.startswith(self.issuer + "/interaction/"), page.url  # no page of ours
        await page.fill("input[name=login]", login)
        await page.fill("input[name=password]", "any")
        await page.click("button[type=submit]")
        if page.url.startswith(self.issuer):  # the provider's consent step
            await page.click("button[type=submit]")
        assert page.url.startswith(self.base + "/board"), page.url
        return page

    async def shot(self, page: Any, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path


@pytest.fixture
async def desk(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Desk]:
    from playwright.async_api import async_playwright

    monkeypatch.setenv("LIAISONBOT_WEB_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("LIAISONBOT_WEB_SESSION_KEY", SESSION_KEY)
    port, op_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    with oidc_provider(port=op_port, redirect_uri=base + "/board/callback", client_id=CLIENT_ID,
                       client_secret=CLIENT_SECRET, accounts=ACCOUNTS) as issuer:
        settings = make_settings(sqlite_url, web=web_config(issuer, base,
                                                            scope="openid liaison"))
        # The provider signs with the real time, so the desk's clock starts at it.
        bot = await start_bot(settings, now=datetime.now(UTC))
        await seed(bot)
        served = await serve(bot, port)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                       args=CHROMIUM_ARGS)
            try:
                yield Desk(bot, served, issuer, browser)
            finally:
                await browser.close()
                await served.close()
                await bot.core.close()


async def test_sign_in_and_pages_for_each_office(desk: Desk) -> None:
    alice = await desk.sign_in("alice")
    assert alice.url == desk.base + "/board/icc-otp/"
    body = await alice.inner_text("main")
    assert "ICC-01/14" in body and "OP-2026-017" not in body
    await desk.shot(alice, "cases-icc")
    await alice.click("text=ICC-01/14")
    body = await alice.inner_text("main")
    assert CONFIDENTIAL_SUMMARY in body and "Bank records of X" in body and "R-3" not in body
    await desk.shot(alice, "case-icc-member")
    # Filters work without JavaScript (a plain GET form).
    await alice.select_option("select[name=status]", "answered")
    await alice.click("text=Filter")
    body = await alice.inner_text("main")
    assert "R-1" in body and "R-2" not in body and "R-4" not in body
    await alice.goto(desk.base + "/board/icc-otp/R-1")
    body = await alice.inner_text("main")
    assert "Records attached in the secure channel" in body and "none was changed" in body
    await desk.shot(alice, "request-icc")
    await alice.click("text=Partners")
    assert await alice.locator("svg.chart").count() == 1
    await desk.shot(alice, "partners-icc")

    ivan = await desk.sign_in("ivan", "/board/icc-otp/case?ref=ICC-01/14")
    assert ivan.url == desk.base + "/board/icc-otp/case?ref=ICC-01/14"  # back where he was going
    body = await ivan.inner_text("main")
    assert CONFIDENTIAL_SUMMARY not in body and "(confidential" in body
    await desk.shot(ivan, "case-icc-non-member")
    await ivan.goto(desk.base + "/board/icc-otp/R-2")
    assert CONFIDENTIAL_SUMMARY not in await ivan.content()

    bojan = await desk.sign_in("bojan")
    body = await bojan.inner_text("main")
    assert "ICC-01/14" in body and "OP-2026-017" in body
    await bojan.goto(desk.base + "/board/ba-spo/R-2")
    assert CONFIDENTIAL_SUMMARY in await bojan.inner_text("main")

    olena = await desk.sign_in("olena")
    body = await olena.inner_text("main")
    assert "OP-2026-017" in body and "ICC-01/14" in body  # R-4 ICC→UA only
    await olena.goto(desk.base + "/board/ua-pgo/case?ref=ICC-01/14")
    body = await olena.inner_text("main")
    assert "R-4" in body and "R-1" not in body and "R-2" not in body
    assert "Bank records" not in body and CONFIDENTIAL_SUMMARY not in body
    response = await olena.goto(desk.base + "/board/icc-otp/")
    assert response.status == 404

    nobody = await desk.sign_in("nobody")
    body = await nobody.inner_text("main")
    assert "names no office" in body and "ICC-01/14" not in body and BA_UA_SUMMARY not in body
    await desk.shot(nobody, "no-office")


async def test_csv_download_and_headers(desk: Desk) -> None:
    alice = await desk.sign_in("alice")
    await alice.goto(desk.base + "/board/icc-otp/case?ref=ICC-01/14")
    async with alice.expect_download() as waiting:
        await alice.click("text=Download CSV")
    download = await waiting.value
    text = Path(await download.path()).read_text()
    assert text.startswith("id,case,kind") and CONFIDENTIAL_SUMMARY in text
    assert BA_UA_SUMMARY not in text
    response = await alice.goto(desk.base + "/board/icc-otp/")
    headers = await response.all_headers()
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"


async def test_tampered_cookie_and_logout(desk: Desk) -> None:
    alice = await desk.sign_in("alice")
    context = alice.context
    cookies = {c["name"]: c for c in await context.cookies()}
    session = cookies["lb_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and not session["secure"]
    raw = bytearray(base64.urlsafe_b64decode(session["value"]))
    raw[-40] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode()
    await context.clear_cookies()
    await context.add_cookies([{"name": "lb_session", "value": tampered,
                                "url": desk.base + "/board"}])
    assert [c["value"] for c in await context.cookies(desk.base + "/board/")] == [tampered]
    await alice.goto(desk.base + "/board/icc-otp/")
    assert alice.url.startswith(desk.issuer), alice.url  # refused: back to the provider
    assert "ICC-01/14" not in await alice.content()

    bojan = await desk.sign_in("bojan")
    await bojan.click("text=Sign out")
    assert bojan.url.startswith(desk.issuer), (bojan.url, await bojan.content())
    assert "lb_session" not in {c["name"] for c in await bojan.context.cookies()}
    # The board's session is gone (the provider's own session is the provider's business).
    response = await bojan.context.request.get(desk.base + "/board/ba-spo/", max_redirects=0)
    assert response.status == 302 and response.headers["location"].startswith(desk.issuer)


async def test_a_non_member_reads_no_particulars_of_a_confidential_request(desk: Desk) -> None:
    """Issue 22, item 1, in the browser against the real provider: a confidential request
    carrying person and measure, which went through incomplete and complete: an ICC user who
    is not a listed member reads its envelope and masks, never the missing text, the person,
    the measure or the basis; the listed member reads them all."""
    bot = desk.bot
    await bot.exec('!liaison open ICC-03/07 to:ba-spo conf:confidential person:"Milan Kovac" '
                   'measure:"search of the warehouse" Search of the warehouse in Zenica',
                   user="alice", room="icc")
    await bot.exec("!liaison incomplete R-5 the judicial authorisation of the search",
                   user="bojan", room="ba")
    await bot.exec("!liaison complete R-5 authorisation sent by courier", user="alice",
                   room="icc")
    secrets = ("Milan Kovac", "search of the warehouse", "judicial authorisation",
               "sent by courier", "Search of the warehouse in Zenica")
    ivan = await desk.sign_in("ivan", "/board/icc-otp/R-5")
    body = await ivan.inner_text("main")
    assert "ICC-03/07" in body and "(confidential" in body
    assert [s for s in secrets if s in await ivan.content()] == []
    await desk.shot(ivan, "request-confidential-non-member")
    alice = await desk.sign_in("alice", "/board/icc-otp/R-5")
    body = await alice.inner_text("main")
    assert [s for s in secrets if s not in body] == []


async def test_a_request_page_shows_its_measures(desk: Desk) -> None:
    """Issue 24: a request with two measures, one answered on conditions, the other postponed:
    its page lists both with their states, the answer and the conditions on use; a third
    office's user gets no page of it."""
    from liaisonbot.domain.commands import DueSpec, PostponeMeasure
    from liaisonbot.service.desk import Actor

    bot = desk.bot
    await bot.exec('!liaison open ICC-02/11 to:ba-spo measure:"hearing of witness W" '
                   'measure:"bank records of X" Evidence on X', user="alice", room="icc")
    await bot.exec('!liaison answer R-5/1 Transcript sent conditions:"for use in ICC-02/11 only"',
                   user="bojan", room="ba")
    until = bot.clock.now().date() + timedelta(days=60)
    outcome = await bot.core.desk.run_command(
        Actor(user="console:bojan", room="console:ba"),
        PostponeMeasure(5, 2, DueSpec(on=until), "ongoing investigation"))
    assert outcome.ok
    alice = await desk.sign_in("alice", "/board/icc-otp/R-5")
    body = await alice.inner_text("main")
    assert "partly answered" in body and "Measures" in body
    rows = await alice.locator("table.measures tbody tr").all_inner_texts()
    assert len(rows) == 2
    assert "R-5/1" in rows[0] and "hearing of witness W" in rows[0] and "answered" in rows[0]
    assert "Transcript sent" in rows[0] and "for use in ICC-02/11 only" in rows[0]
    assert "R-5/2" in rows[1] and "postponed" in rows[1] and "ongoing investigation" in rows[1]
    assert await alice.locator("tr.measure.postponed").count() == 1
    await desk.shot(alice, "request-measures")
    # A confidential request's measures and conditions: masked for a non-member of the office.
    await bot.exec('!liaison open ICC-02/11 to:ba-spo conf:confidential measure:"tap of phone P" '
                   'measure:"records of Y" Secret', user="alice", room="icc")
    await bot.exec('!liaison answer R-6/1 sent conditions:"never to the defence"', user="bojan",
                   room="ba")
    ivan = await desk.sign_in("ivan", "/board/icc-otp/R-6")
    rows = await ivan.locator("table.measures tbody tr").all_inner_texts()
    assert len(rows) == 2 and "answered" in rows[0] and "(confidential" in rows[0]
    assert [s for s in ("tap of phone P", "records of Y", "never to the defence")
            if s in await ivan.content()] == []
    member = await alice.goto(desk.base + "/board/icc-otp/R-6")
    assert member is not None and "never to the defence" in await alice.inner_text("main")
    olena = await desk.sign_in("olena")
    response = await olena.goto(desk.base + "/board/ua-pgo/R-5")
    assert response.status == 404 and "hearing of witness W" not in await olena.content()


async def test_parallel_requests_shown_together_to_the_requesting_office(desk: Desk) -> None:
    """Issue 24: ``open … to:A,B`` in Chromium: the requesting office's case page lists both
    requests marked as parallel; each requested office's page lists its own alone, with no
    trace of the other."""
    bot = desk.bot
    out = await bot.exec("!liaison open OP-7 to:ba-spo,ua-pgo Phone records of Y", user="alice",
                         room="icc")
    assert "R-5, R-6 opened in parallel" in out, out

    async def refs(page: Any) -> list[str]:
        return [text.strip() for text in await page.locator("tbody td a").all_inner_texts()]

    alice = await desk.sign_in("alice", "/board/icc-otp/case?ref=OP-7")
    assert sorted(await refs(alice)) == ["R-5", "R-6"]
    marks = await alice.locator("small.parallel").all_inner_texts()
    assert len(marks) == 2 and all("R-5" in mark and "R-6" in mark for mark in marks), marks
    await desk.shot(alice, "case-parallel")
    for login, office, own, other in (("bojan", "ba-spo", "R-5", "R-6"),
                                      ("olena", "ua-pgo", "R-6", "R-5")):
        page = await desk.sign_in(login, f"/board/{office}/case?ref=OP-7")
        assert await refs(page) == [own]
        body = await page.content()
        assert await page.locator("small.parallel").count() == 0 and other not in body
        response = await page.goto(f"{desk.base}/board/{office}/{other}")
        assert response is not None and response.status == 404
