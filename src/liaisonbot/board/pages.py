"""The board's HTTP handlers (aiohttp + Jinja2): sign-in, the office's cases, a case, a
request, partners, CSV. Read-only; every field passes ``visible.field_shown``."""

from __future__ import annotations

import csv
import io
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

import jinja2
from aiohttp import web

from liaisonbot.board.figures import ACK_ACTIONS, check_entries, partner_chart
from liaisonbot.board.oidc import CALLBACK_PATH, IssuerUnreachable, OidcClient, SignInError
from liaisonbot.board.session import LOGIN_COOKIE, LOGIN_SECONDS, SESSION_COOKIE, Sealer
from liaisonbot.board.visible import Viewer, audience, field_shown
from liaisonbot.config import WebSettings
from liaisonbot.domain.contacts import at_desk
from liaisonbot.domain.directory import Directory
from liaisonbot.domain.model import PENDING, Office, Request, Status
from liaisonbot.domain.refs import is_case_ref
from liaisonbot.domain.timefmt import local_time
from liaisonbot.domain.visibility import Audience, Place, sees_parallels
from liaisonbot.service import messages as m
from liaisonbot.service.i18n import Words, translator, words
from liaisonbot.service.ports import Clock
from liaisonbot.service.presenter import Presenter, Reader
from liaisonbot.service.reports import PartnerFigures, PartyRequest, partner_figures
from liaisonbot.store.board import BoardReads
from liaisonbot.store.uow import SqlUnitOfWorkFactory

log = logging.getLogger(__name__)
#: Requests per case page (most urgent first; further pages by ?page=N).
CASE_PAGE_SIZE = 250
#: At most this many requests in a case's CSV download; the last row says when cut.
CASE_CSV_LIMIT = 10_000
#: At most this many cases on the cases page (most overdue first); the CSV has them all.
CASES_PAGE_LIMIT = 200
STATIC = Path(__file__).parent / "static"
Handler = Callable[[web.Request, Viewer, Office], Awaitable[web.StreamResponse]]


def _listed(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int)]
    return []


class CaseLine(NamedTuple):
    """One request as a case page shows it."""

    ref: str
    urgent: bool
    parties: str
    kind: str
    status: str
    overdue: bool
    due: str
    due_rel: str
    summary: str
    #: ``Opened in parallel: R-3, R-4`` for the requesting office (issue 24), else "".
    parallel: str = ""


def _redirect(location: str, status: int = 302) -> web.Response:
    return web.Response(status=status, headers={"Location": location})


def _csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in user text (CSV injection)."""
    return f"'{value}" if isinstance(value, str) and value and value[0] in "=+-@\t\r" \
        else value


#: ``kv_state`` key prefix of the session ids logged out (kept a day: longer than a session).
REVOKED = "board:revoked:"


class Board:
    """Mounts ``/board…`` on the bot's aiohttp application."""

    def __init__(self, *, web_settings: WebSettings, directory: Directory,
                 uow: SqlUnitOfWorkFactory, clock: Clock, oidc: OidcClient | None = None) -> None:
        self.web = web_settings
        self.directory = directory
        self.present = Presenter(directory)
        self.uow = uow
        self.clock = clock
        self.oidc = oidc or OidcClient(web_settings, clock)
        self.sealer = Sealer(web_settings.session_key, clock)
        self.lifetime = timedelta(minutes=web_settings.session_minutes)
        self._jinja: dict[str, jinja2.Environment] = {}
        issuer = urlsplit(web_settings.oidc_issuer)
        self.csp = ("default-src 'none'; style-src 'self'; img-src 'self'; "
                    f"form-action 'self' {issuer.scheme}://{issuer.netloc}; "
                    "frame-ancestors 'none'; base-uri 'none'")

    # ------------------------------------------------------------------ mounting, headers

    def mount(self, app: web.Application) -> None:
        r = app.router
        r.add_static("/board/static", STATIC)
        r.add_get("/board", self._entry)
        r.add_get("/board/", self._entry)
        r.add_get(CALLBACK_PATH, self._callback)
        r.add_post("/board/logout", self._logout)
        for path, handler in (("/", self._cases), ("/cases.csv", self._cases_csv),
                              ("/case", self._case), ("/case.csv", self._case_csv),
                              (r"/R-{rid:\d+}", self._request),
                              ("/partners", self._partners),
                              ("/partners.csv", self._partners_csv),
                              ("/contacts", self._contacts)):
            r.add_get("/board/{office}" + path, self._guarded(handler))

    def _headers(self, response: web.StreamResponse) -> web.StreamResponse:
        response.headers["Content-Security-Policy"] = self.csp
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"  # no-referrer would null Origin
        response.headers["X-Frame-Options"] = "DENY"
        return response

    def jinja(self, language: str) -> jinja2.Environment:
        """The templates in ``language``: Jinja2's i18n extension over the bot's gettext
        catalog (``{% trans %}``, ``_()``, plurals by the language's rules), one environment
        per language so a page never sees another's words."""
        env = self._jinja.get(language)
        if env is None:
            env = jinja2.Environment(
                loader=jinja2.PackageLoader("liaisonbot.board", "templates"),
                autoescape=True, undefined=jinja2.StrictUndefined, auto_reload=False,
                extensions=["jinja2.ext.i18n"])
            env.policies["ext.i18n.trimmed"] = True  # babel.cfg extracts with trimmed = true
            env.install_gettext_translations(translator(language),  # type: ignore[attr-defined]
                                             newstyle=True)
            self._jinja[language] = env
        return env

    def _html(self, template: str, http_status: int = 200, *, lang: str,
              **context: Any) -> web.Response:
        body = self.jinja(lang).get_template(template).render(lang=lang, **context)
        response = web.Response(text=body, status=http_status, content_type="text/html")
        self._headers(response)
        return response

    def _sentence(self, sentence: str, status: int, lang: str = "en",
                  viewer: Viewer | None = None) -> web.Response:
        """One sentence (a ``messages`` msgid, already formatted or not) in ``lang``."""
        return self._html("message.html", http_status=status, lang=lang,
                          sentence=words(lang)(sentence), viewer=viewer, office=None)

    def _language(self, viewer: Viewer) -> str:
        """The language of a page that is no office's: the viewer's first office's."""
        first = self.directory.office(viewer.offices[0]) if viewer.offices else None
        return first.language if first else "en"

    def _cookie(self, response: web.StreamResponse, name: str, value: str,
                max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/board", httponly=True,
                            secure=self.web.secure, samesite="Lax")

    # ------------------------------------------------------------------ sign-in

    async def viewer(self, request: web.Request) -> Viewer | None:
        """The signed-in viewer, or None: no session cookie, a forged, changed or expired
        one, one without a session id (sealed before sessions had one) or one logged out
        (its id revoked on the server, so a copied cookie is over too)."""
        data = self.sealer.open(request.cookies.get(SESSION_COOKIE), self.lifetime)
        if data is None or not isinstance(data.get("sid"), str):
            return None
        async with self.uow(read_only=True) as tx:
            if await tx.state.get(REVOKED + data["sid"]) is not None:
                return None
        known = [o.slug for o in self.directory.offices]
        offices = tuple(slug for slug in known if slug in _listed(data.get("offices")))
        return Viewer(subject=str(data.get("sub", "")), offices=offices,
                      chat_ids=frozenset(_listed(data.get("ids"))))

    async def _to_issuer(self, request: web.Request) -> web.StreamResponse:
        """No valid session: straight to the issuer, remembering where the user was going."""
        try:
            started = await self.oidc.start()
        except SignInError as error:  # unreachable, or its discovery document is not sound
            log.warning("board: issuer unusable", extra={"error": str(error)})
            return self._sentence(m.BOARD_ISSUER_DOWN, 503)
        target = request.path_qs if request.path.startswith("/board") else "/board"
        response = _redirect(started.url)
        self._cookie(response, LOGIN_COOKIE, self.sealer.seal(
            {"state": started.state, "nonce": started.nonce, "verifier": started.verifier,
             "next": target}, timedelta(seconds=LOGIN_SECONDS)), LOGIN_SECONDS)
        return self._headers(response)

    async def _callback(self, request: web.Request) -> web.StreamResponse:
        login = self.sealer.open(request.cookies.get(LOGIN_COOKIE),
                                 timedelta(seconds=LOGIN_SECONDS))
        query = request.query
        if not login or not query.get("state") or query.get("state") != login.get("state") \
                or "error" in query or not query.get("code"):
            log.warning("board: sign-in refused", extra={"why": "state, code or error"})
            return self._refused()
        try:
            claims = await self.oidc.finish(code=query["code"], verifier=login["verifier"],
                                            nonce=login["nonce"])
        except IssuerUnreachable as error:
            log.warning("board: issuer unreachable", extra={"error": str(error)})
            return self._sentence(m.BOARD_ISSUER_DOWN, 503)
        except SignInError as error:
            log.warning("board: sign-in refused", extra={"why": str(error)})
            return self._refused()
        session = {"sid": secrets.token_urlsafe(16), "sub": claims.get("sub"),
                   "offices": _listed(claims.get(self.web.office_claim)),
                   "ids": _listed(claims.get(self.web.member_claim))}
        target = str(login.get("next") or "/board")
        response = _redirect(target if target.startswith("/board") else "/board")
        self._cookie(response, SESSION_COOKIE, self.sealer.seal(session, self.lifetime),
                     int(self.lifetime.total_seconds()))
        response.del_cookie(LOGIN_COOKIE, path="/board")
        return self._headers(response)

    def _refused(self) -> web.Response:
        response = self._sentence(m.BOARD_SIGNIN_FAILED, 400)
        response.del_cookie(LOGIN_COOKIE, path="/board")
        return response

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        """End the session: its id is revoked on the server (every copy of the cookie is
        over), the cookie deleted, and the browser sent to the issuer's end-session endpoint.
        Only from the board itself: the ``Origin`` must be the board's, or, when a browser
        sends none, ``Sec-Fetch-Site`` must say ``same-origin``."""
        origin = request.headers.get("Origin")
        same_site = request.headers.get("Sec-Fetch-Site") == "same-origin"
        if origin != self._origin() and not (origin is None and same_site):
            return self._sentence(m.BOARD_BAD_LOGOUT, 403)
        data = self.sealer.open(request.cookies.get(SESSION_COOKIE), self.lifetime)
        if data is not None and isinstance(data.get("sid"), str):
            async with self.uow() as tx:
                await tx.state.put(REVOKED + data["sid"], "logged out", self.clock.now())
                await tx.commit()
        try:
            end = (await self.oidc.metadata()).get("end_session_endpoint")
        except SignInError:
            end = None
        target = (f"{end}?{urlencode({'client_id': self.web.client_id})}" if end
                  else "/board")
        response = _redirect(target, 303)
        response.del_cookie(SESSION_COOKIE, path="/board")
        return self._headers(response)

    def _origin(self) -> str:
        parts = urlsplit(self.web.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    # ------------------------------------------------------------------ pages

    async def _entry(self, request: web.Request) -> web.StreamResponse:
        viewer = await self.viewer(request)
        if viewer is None:
            return await self._to_issuer(request)
        if not viewer.offices:
            return self._sentence(m.BOARD_NO_OFFICE, 200, viewer=viewer)
        return self._headers(_redirect(f"/board/{viewer.offices[0]}/"))

    def _guarded(self, handler: Handler) -> Callable[[web.Request],
                                                     Awaitable[web.StreamResponse]]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            viewer = await self.viewer(request)
            if viewer is None:
                return await self._to_issuer(request)
            office = self.directory.office(request.match_info["office"])
            if office is None or office.slug not in viewer.offices:
                return self._sentence(m.BOARD_NOT_FOUND, 404, self._language(viewer))
            try:
                response = await handler(request, viewer, office)
            except web.HTTPBadRequest as error:  # a malformed filter: one sentence
                response = self._sentence(error.text or "", 400, office.language)
            response.headers["Server-Timing"] = \
                f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
            return self._headers(response)
        return guarded

    def _context(self, viewer: Viewer, office: Office, **more: Any) -> dict[str, Any]:
        """What every office page's template gets: the office's language (``lang``, ``w``) and
        its dates, relative times and numbers (Babel), in the office's time zone."""
        tz = office.calendar.tz.key
        now = self.clock.now()
        w = words(office.language)
        return {"viewer": viewer, "office": office, "now": now, "tz": tz, "w": w,
                "lang": office.language,
                "when": lambda moment: w.local_time(moment, tz) if moment else "—",
                "rel": lambda moment: w.relative(moment, now),
                "number": lambda value: _number(office.language, value), "percent": w.percent,
                "tenths": lambda value: "—" if value is None else w.tenths(value),
                "name": self.directory.name, **more}

    async def _cases(self, request: web.Request, viewer: Viewer,
                     office: Office) -> web.StreamResponse:
        async with self.uow(read_only=True) as tx:
            cases = await BoardReads(tx).cases(office.slug, self.clock.now())
        w = words(office.language)
        cut = (w(m.BOARD_CASES_CUT).format(limit=w.number(CASES_PAGE_LIMIT),
                                           total=w.number(len(cases)))
               if len(cases) > CASES_PAGE_LIMIT else "")
        return self._html("cases.html", **self._context(viewer, office,
                                                          cases=cases[:CASES_PAGE_LIMIT],
                                                          total=len(cases), cut=cut))

    async def _cases_csv(self, request: web.Request, viewer: Viewer,
                         office: Office) -> web.StreamResponse:
        async with self.uow(read_only=True) as tx:
            cases = await BoardReads(tx).cases(office.slug, self.clock.now())
        return self._csv(f"{office.slug}-cases.csv", ("case", "requests", "open", "overdue"),
                         [list(row) for row in cases])

    def _case_filters(self, request: web.Request
                      ) -> tuple[str, str | None, str | None, str | None]:
        """The case and its filters (status, partner office, instrument); an unknown filter
        value is dropped."""
        ref = request.query.get("ref", "")
        status = request.query.get("status") or None
        partner = request.query.get("partner") or None
        instrument = request.query.get("via") or None
        if status not in (None, *(s.value for s in Status)):
            status = None
        if partner is not None and self.directory.office(partner) is None:
            partner = None
        if instrument not in self.directory.instruments:
            instrument = None
        return ref, status, partner, instrument

    async def _case_rows(self, request: web.Request, viewer: Viewer, office: Office, *,
                         limit: int, offset: int = 0, count: bool = False
                         ) -> tuple[str, str | None, str | None, str | None, list[Request], int]:
        ref, status, partner, via = self._case_filters(request)
        if not is_case_ref(ref):
            raise web.HTTPBadRequest(
                text=words(office.language)(m.BOARD_BAD_CASE).format(case=ref[:80]))
        async with self.uow(read_only=True) as tx:
            reads = BoardReads(tx)
            rows = await reads.case_requests(ref, office.slug, status=status, partner=partner,
                                             instrument=via, limit=limit, offset=offset)
            total = (await reads.case_count(ref, office.slug, status=status, partner=partner,
                                            instrument=via)
                     if count else len(rows))
        rows = [r for r in rows if field_shown(r, viewer, "id", directory=self.directory)]
        return ref, status, partner, via, rows, total

    def _case_lines(self, rows: list[Request], viewer: Viewer, office: Office) -> list[CaseLine]:
        """The rows as the template prints them, computed in one pass (a case page may hold a
        thousand requests; the due times repeat, so each is formatted once)."""
        now, tz, w = self.clock.now(), office.calendar.tz.key, words(office.language)
        due_text: dict[datetime, tuple[str, str]] = {}
        lines = []
        groups: dict[int, list[str]] = {}
        for r in rows:  # parallel requests, as the requesting office may see them together
            if sees_parallels(r, Audience(Place.BOARD, office.slug)):
                groups.setdefault(r.parallel_of or r.id, []).append(r.ref)
        for r in rows:
            group = groups.get(r.parallel_of or r.id, [])
            if r.due_at not in due_text:
                due_text[r.due_at] = (w.local_time(r.due_at, tz), w.relative(r.due_at, now))
            due, due_rel = due_text[r.due_at]
            lines.append(CaseLine(
                ref=r.ref, urgent=r.urgent, parties=f"{r.requesting} → {r.requested}",
                kind=w.kind(r.kind.value), status=w.status(r.status.value),
                overdue=r.is_overdue(now),
                due=due, due_rel=due_rel, summary=self._field(r, viewer, "summary", r.summary,
                                                              w),
                parallel=w(m.LIST_PARALLEL).format(refs=", ".join(group))
                if len(group) > 1 else ""))
        return lines

    async def _case(self, request: web.Request, viewer: Viewer,
                    office: Office) -> web.StreamResponse:
        raw_page = request.query.get("page", "1")
        page = max(1, min(int(raw_page), 100_000)) if raw_page.isdigit() else 1
        ref, status, partner, via, rows, total = await self._case_rows(
            request, viewer, office, limit=CASE_PAGE_SIZE, offset=(page - 1) * CASE_PAGE_SIZE,
            count=True)
        query = {k: v for k, v in (("ref", ref), ("status", status), ("partner", partner),
                                   ("via", via)) if v}
        first = (page - 1) * CASE_PAGE_SIZE + 1
        w = words(office.language)
        async with self.uow(read_only=True) as tx:  # requests it forwarded away (read only)
            formers = await tx.former.for_case(ref, office.slug)
        forwarded = w(m.LIST_FORWARDED).format(requests=", ".join(
            w(m.PARALLEL_ITEM).format(ref=f.request.ref, office=self.directory.name(f.to),
                                      status=w.status(f.request.status.value))
            for f in formers)) if formers else ""

        def link(to: int) -> str:
            return f"/board/{office.slug}/case?{urlencode({**query, 'page': to})}"

        return self._html("case.html", **self._context(
            viewer, office, ref=ref, status=status, partner=partner, via=via,
            instruments=sorted(self.directory.instruments),
            requests=self._case_lines(rows, viewer, office),
            total=total, forwarded=forwarded,
            paging=(w(m.BOARD_PAGE).format(first=w.number(first),
                                            last=w.number(first + len(rows) - 1),
                                            total=w.number(total))
                    if total > CASE_PAGE_SIZE and rows else ""),
            prev_link=link(page - 1) if page > 1 else "",
            next_link=link(page + 1) if first + len(rows) - 1 < total else "",
            statuses=[s.value for s in Status],
            partners=[o.slug for o in self.directory.offices if o.slug != office.slug],
            csv_query=urlencode(query)))

    async def _case_csv(self, request: web.Request, viewer: Viewer,
                        office: Office) -> web.StreamResponse:
        ref, _status, _partner, _via, rows, _ = await self._case_rows(request, viewer, office,
                                                                limit=CASE_CSV_LIMIT)
        tz = office.calendar.tz.key
        fields = ("id", "case", "kind", "requesting", "requested", "status", "urgent",
                  "confidentiality", "created", "due", "summary")
        data = [[r.ref, r.case, r.kind.value, r.requesting, r.requested, r.status.value,
                 r.urgent, r.confidentiality.value, local_time(r.created_at, tz),
                 local_time(r.due_at, tz), self._field(r, viewer, "summary", r.summary)]
                for r in rows]
        return self._csv(f"{office.slug}-{ref.replace('/', '_')}.csv", fields, data)

    def _field(self, request: Request, viewer: Viewer, field: str, value: Any,
               w: Words | None = None) -> Any:
        if field_shown(request, viewer, field, directory=self.directory):
            return value
        return (w or words("en"))(m.BOARD_CONFIDENTIAL)

    async def _request(self, request: web.Request, viewer: Viewer,
                       office: Office) -> web.StreamResponse:
        rid = int(request.match_info["rid"])
        async with self.uow(read_only=True) as tx:
            found = await tx.requests.get(rid)
            if found is None or not found.is_party(office.slug) or \
                    not field_shown(found, viewer, "id", directory=self.directory):
                return self._sentence(m.BOARD_NOT_FOUND, 404, office.language)
            reads = BoardReads(tx)
            sealed = await reads.sealed_entries(rid)
            head = await reads.head()
            seal = await tx.history.seal()
            tail = await tx.requests.tail(rid)
        check = check_entries(sealed, head, seal, tail)
        w = words(office.language)
        reader = Reader(audience(found, viewer, office.slug, self.directory),
                        office.calendar.tz.key, office.language)
        timeline = [{"at": datetime.fromisoformat(item.entry.at),
                     "action": self.present.action(item.entry.action, reader),
                     "actor": item.entry.actor, "platform": item.entry.platform,
                     "detail": ", ".join(self.present.detail_items(found, item.entry.detail,
                                                                   reader))}
                    for item, _before, _after in sealed]
        return self._html("request.html", **self._context(
            viewer, office, r=found, timeline=timeline, check=check,
            chain_reason=w(check.reason),
            summary=self._field(found, viewer, "summary", found.summary, w),
            basis=self._field(found, viewer, "basis", found.basis, w),
            answer=self._field(found, viewer, "answer", found.answer, w),
            conditions=self._field(found, viewer, "conditions", found.conditions, w)
            if found.conditions else "",
            measures=self._measures(found, viewer, w),
            via=self.present.via_name(found.instrument, reader) if found.instrument else "",
            overdue=found.is_overdue(self.clock.now()), pending=found.status in PENDING))

    def _measures(self, found: Request, viewer: Viewer, w: Words) -> list[dict[str, Any]]:
        """A request's numbered measures for its page, each field asked of the visibility
        policy like the request's own (text, answer, conditions on use, reason)."""
        return [{"ref": f"{found.ref}/{x.number}", "state": x.state.value,
                 "state_name": w(m.MEASURE_STATES[x.state.value]),
                 "text": self._field(found, viewer, "measure", x.text, w),
                 "answer": self._field(found, viewer, "answer", x.answer, w) if x.answer
                 else "",
                 "conditions": self._field(found, viewer, "conditions", x.conditions, w)
                 if x.conditions else "",
                 "reason": self._field(found, viewer, "reason", x.reason, w) if x.reason
                 else "",
                 "at": x.at, "until": x.until} for x in found.measures]

    async def _partner_rows(self, office: Office) -> list[PartnerFigures]:
        """The weekly report's partner figures (``reports.partner_figures``), from the
        board's two indexed reads instead of whole histories."""
        async with self.uow(read_only=True) as tx:
            reads = BoardReads(tx)
            requests = await reads.party_times(office.slug)
            firsts = await reads.first_moments(office.slug, ACK_ACTIONS)
        by_partner: dict[str, list[PartyRequest]] = {}
        for row in requests:
            by_partner.setdefault(row.partner, []).append(row)
        return partner_figures(by_partner, lambda rid, action: firsts.get((rid, action)),
                               self.clock.now())

    async def _partners(self, request: web.Request, viewer: Viewer,
                        office: Office) -> web.StreamResponse:
        rows = await self._partner_rows(office)
        chart = partner_chart(rows, self.directory.name, words(office.language))
        return self._html("partners.html", **self._context(viewer, office, rows=rows,
                                                             chart=chart))

    async def _contacts(self, request: web.Request, viewer: Viewer,
                        office: Office) -> web.StreamResponse:
        """Every office's points of contact, as ``who OFFICE`` tells them in chat, for a
        signed-in user of ``office`` (a configured office: ``_guarded``), in its language and
        zone. No CSV: contact details stay on the page."""
        now, present = self.clock.now(), Presenter(self.directory)
        reader = Reader(Audience(Place.BOARD, office.slug), office.calendar.tz.key,
                        office.language)
        desks = [at_desk(self.directory, o, now) for o in self.directory.offices]
        return self._html("contacts.html", **self._context(
            viewer, office, desks=desks, reader=reader, present=present,
            no_contacts=reader.words(m.WHO_NO_CONTACTS)))

    async def _partners_csv(self, request: web.Request, viewer: Viewer,
                            office: Office) -> web.StreamResponse:
        rows = await self._partner_rows(office)
        fields = ("partner", "open", "overdue", "ack_median_h", "ack_p90_h",
                  "answer_median_d", "answer_p90_d", "answered", "answered_on_time")
        return self._csv(f"{office.slug}-partners.csv", fields,
                         [[r.partner, r.open, r.overdue, r.median_ack_hours, r.p90_ack_hours,
                           r.median_answer_days, r.p90_answer_days, r.answered, r.on_time]
                          for r in rows])

    @staticmethod
    def _csv(filename: str, fields: tuple[str, ...], rows: list[list[Any]]) -> web.Response:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(fields)
        writer.writerows([_csv_cell("" if v is None else v) for v in row] for row in rows)
        return web.Response(text=out.getvalue(), content_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{filename}"'})


@lru_cache(maxsize=8192)
def _number(language: str, value: int) -> str:
    """A count in the language's digits and grouping (a cases page prints hundreds of small
    counts; Babel's formatting is worth remembering)."""
    return words(language).number(value)
