"""Reports over the record: a case's request log (``liaisonbot export``) and the audit check."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import median
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaisonbot.domain.audit import Break, Entry, state_hash, verify
from liaisonbot.domain.checkpoint import Statement, sign
from liaisonbot.domain.directory import Directory
from liaisonbot.domain.model import HELD, PENDING, PENDING_OR_PAUSED, Request, Status
from liaisonbot.domain.visibility import (
    MASK,
    Audience,
    Place,
    Shown,
    former_history,
    seen,
    sees_parallels,
    visibility,
)
from liaisonbot.service import messages as m
from liaisonbot.service.i18n import Words, words
from liaisonbot.service.ports import UnitOfWorkFactory
from liaisonbot.service.stats import quantile, request_clock, statistics

FIELDS = ("id", "case", "kind", "requesting", "requested", "status", "urgent", "confidentiality",
          "created_at", "due_at", "ack_due_at", "eta", "assignee", "summary", "basis",
          "answer", "conditions", "measures",
          # Annex B of the acknowledgement (EIO): receipt, their reference, their contact
          "received_at", "their_ref", "their_contact",
          # issue 24: the first of its parallel requests (the requesting office only), and a
          # postponement's date or a consultation's reason while held
          "parallel_of", "hold_until", "hold_reason")


def _row(request: Request, audience: Audience) -> dict[str, Any]:
    """A request's row as the visibility policy lets ``audience`` see it (confidential
    summaries never leave the record in an export)."""
    return {
        "id": request.ref, "case": request.case, "kind": request.kind.value,
        "requesting": request.requesting, "requested": request.requested,
        "status": request.status.value, "urgent": request.urgent,
        "confidentiality": request.confidentiality.value,
        "created_at": request.created_at.isoformat(), "due_at": request.due_at.isoformat(),
        "ack_due_at": request.ack_due_at.isoformat(),
        "eta": request.eta.isoformat() if request.eta else "",
        "assignee": request.assignee or "",
        "summary": seen(request, audience, "summary"),
        "basis": seen(request, audience, "basis"),
        "answer": seen(request, audience, "answer"),
        "conditions": seen(request, audience, "conditions"),
        "measures": measure_rows(request, audience),
        "received_at": request.events["received"].isoformat()
        if "received" in request.events else "",
        "their_ref": request.ack_ref, "their_contact": request.ack_contact,
        "parallel_of": f"R-{request.parallel_of}"
        if request.parallel_of and sees_parallels(request, audience) else "",
        "hold_until": request.hold_until.isoformat() if request.hold_until else "",
        "hold_reason": seen(request, audience, "hold_reason"),
    }


def measure_rows(request: Request, audience: Audience) -> list[dict[str, Any]]:
    """A request's numbered measures as ``audience`` may see them: the number, what is
    sought, the state, the answer (or the reason it was declined or postponed), the
    conditions on use, when it was settled and until when it is postponed."""
    def said(field: str, value: str) -> str:
        shown = visibility(request, audience, field)
        return value if shown is Shown.SHOWN or not value else \
            MASK if shown is Shown.MASKED else ""

    return [{"ref": f"{request.ref}/{x.number}", "text": said("measure", x.text),
             "state": x.state.value, "answer": said("answer", x.answer),
             "conditions": said("conditions", x.conditions),
             "reason": said("reason", x.reason),
             "at": x.at.isoformat() if x.at else "",
             "until": x.until.isoformat() if x.until else ""} for x in request.measures]


def _measures_text(rows: list[dict[str, Any]]) -> str:
    """Measures in one cell (CSV, Markdown): ``R-4/1 hearing: answered (conditions on use:
    …); R-4/2 records: declined``."""
    def one(row: dict[str, Any]) -> str:
        text = f"{row['ref']} {row['text']}: {row['state']}"
        if row["until"]:
            text += f" until {row['until'][:10]}"
        if row["conditions"]:
            text += f" (conditions on use: {row['conditions']})"
        return text
    return "; ".join(one(row) for row in rows)


async def export_case(uow: UnitOfWorkFactory, case: str, *, fmt: str,
                      office: str | None, directory: Directory | None = None,
                      now: datetime | None = None) -> str:
    """The case's requests (only those ``office`` is party to, when given) with history; the
    JSON form adds each request's instrument and the case's clock statistics (given the
    ``directory``)."""
    async with uow(read_only=True) as tx:
        requests = (await tx.requests.for_case(case, office) if office
                    else await tx.requests.all_for_case(case))
        # requests the office forwarded away: as they stood, with the history up to then
        formers = [f for f in await tx.former.for_case(case, office)
                   if f.request_id not in {r.id for r in requests}] if office else []
        requests += [f.request for f in formers]
        requests.sort(key=lambda r: r.id)
        found = await tx.history.for_requests([r.id for r in requests])
        histories = {r.id: found.get(r.id, []) for r in requests}
        for former in formers:
            histories[former.request_id] = former_history(histories[former.request_id],
                                                          former.upto)
    audience = Audience(Place.EXPORT, office)
    requests = [r for r in requests if visibility(r, audience, "id") is Shown.SHOWN]
    rows = [_row(r, audience) for r in requests]
    if fmt == "json":
        for row, request in zip(rows, requests, strict=True):
            row["history"] = [{"at": e.at, "actor": e.actor, "action": e.action,
                               "platform": e.platform}
                              for e in histories[request.id]]
        document: dict[str, Any] = {"case": case, "office": office, "requests": rows}
        if directory is not None:
            moment = now or datetime.now(UTC)
            for row, request in zip(rows, requests, strict=True):
                row.update(_clock_row(request, histories[request.id], moment, directory,
                                      audience))
            figures = statistics(office, requests, histories, moment, directory)
            document["statistics"] = {k: [f.as_json() for f in v] for k, v in figures.items()}
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(_csv_safe({**row, "measures": _measures_text(row["measures"])})
                         for row in rows)
        return out.getvalue()
    return _markdown(case, office, requests, rows, histories)


def _clock_row(request: Request, entries: list[Entry], now: datetime,
               directory: Directory, audience: Audience) -> dict[str, Any]:
    """A request's instrument, particulars (as ``audience`` may see them) and measured
    times."""
    clock = request_clock(request, entries, now, directory)
    return {"instrument": request.instrument or "",
            "person": seen(request, audience, "person"),
            "measure": seen(request, audience, "measure"),
            "ack_hours": round(clock.ack / 3600, 1) if clock.ack is not None else None,
            "answer_days": round(clock.answer / 86400, 1) if clock.answer is not None else None,
            "within_legal_time": clock.within_legal,
            "incomplete_days": round(clock.incomplete / 86400, 1)}


def _csv_safe(row: dict[str, Any]) -> dict[str, Any]:
    """Neutralise spreadsheet formulas in user text (CSV injection)."""
    return {k: (f"'{v}" if isinstance(v, str) and v and v[0] in "=+-@\t\r" else v)
            for k, v in row.items()}


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(case: str, office: str | None, requests: list[Request],
              rows: list[dict[str, Any]], histories: dict[int, Any]) -> str:
    lines = [f"# Case {case}" + (f" — requests {office} is party to" if office else ""), ""]
    if not rows:
        return "\n".join([*lines, "No requests.", ""])
    lines += ["| id | kind | from | to | status | due | summary |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['id']} | {r['kind']} | {r['requesting']} | {r['requested']} | "
              f"{r['status']} | {r['due_at'][:16]} | {_md(r['summary'])} |" for r in rows]
    annex_b = [r for r in rows if r["received_at"] or r["their_ref"] or r["their_contact"]]
    if annex_b:  # the acknowledgements' Annex B particulars
        lines += ["", "| id | received | their reference | their contact |",
                  "| --- | --- | --- | --- |"]
        lines += [f"| {r['id']} | {r['received_at'][:16]} | {_md(r['their_ref'])} | "
                  f"{_md(r['their_contact'])} |" for r in annex_b]
    for request, row in zip(requests, rows, strict=True):
        if row["answer"] or row["conditions"] or row["measures"]:
            lines += ["", f"## {request.ref} answer", ""]
            if row["answer"]:
                lines.append(f"- answer: {_md(row['answer'])}")
            if row["conditions"]:
                lines.append(f"- conditions on use: {_md(row['conditions'])}")
            lines += [f"- {_md(_measures_text([item]))}"
                      + (f" — {_md(item['answer'])}" if item["answer"] else "")
                      for item in row["measures"]]
        lines += ["", f"## {request.ref} history", ""]
        lines += [f"- {e.at[:16]} {e.action} by {_md(e.actor)} ({e.platform})"
                  for e in histories[request.id]]
    return "\n".join(lines) + "\n"


async def verify_audit(uow: UnitOfWorkFactory) -> Break | None:
    """The first place where the history does not hold: a chain (``domain.audit.verify``),
    a request with no entry at all (every request is opened with one), or a request row
    that is not the state its last entry sealed."""
    async with uow(read_only=True) as tx:
        chain = await tx.history.chain()
        head = await tx.history.head()
        seal = await tx.history.seal()
        tails = await tx.history.tails()
        requests = await tx.history.requests()
    broken = verify(((item.entry, item.prev_hash, item.hash) for item in chain), head, seal,
                    tails)
    return broken or _states(requests, [item.entry for item in chain])


def _states(requests: list[Request], entries: list[Entry]) -> Break | None:
    last: dict[int, Entry] = {}
    for entry in entries:
        if entry.request_id is not None:
            last[entry.request_id] = entry
    for request in requests:
        found = last.get(request.id)
        if found is None:
            return Break(None, f"request {request.ref} has no history entry (every request "
                         "is opened with one: its entries were removed)")
        if found.state is not None and found.state != state_hash(request):
            return Break(found.id, f"request {request.ref} was changed in the database "
                         f"without a history entry (its row is not what entry {found.id} "
                         "sealed)")
    return None


@dataclass(frozen=True)
class CheckpointCheck:
    """What one checkpoint says of the database now: ``problems`` empty when everything it
    sealed is still there, unchanged (later entries and requests may have been added)."""

    statement: Statement
    problems: list[str]


async def take_checkpoint(uow: UnitOfWorkFactory, key: Ed25519PrivateKey,
                          now: datetime) -> str:
    """A signed checkpoint (``lbcp1:…``) over every request's chain as it stands."""
    async with uow() as tx:  # PostgreSQL: LOCK TABLE … IN SHARE MODE needs a writer
        upto, leaves = await tx.history.leaves()
    return sign(Statement.over(leaves, upto, now), key)


async def has_history(uow: UnitOfWorkFactory) -> bool:
    async with uow(read_only=True) as tx:
        return bool(await tx.history.tails())


async def check_checkpoint(uow: UnitOfWorkFactory, statement: Statement) -> CheckpointCheck:
    """Recompute the leaves ``statement`` covers (entries up to its ``upto``) from the
    database and compare; name the requests that changed (the locator) and those deleted."""
    async with uow(read_only=True) as tx:
        _, leaves = await tx.history.leaves(statement.upto)
        present = {r.id for r in await tx.history.requests()}
    now = Statement.over(leaves, statement.upto, statement.at)
    problems: list[str] = []
    if (now.root, now.entries, now.requests) == (statement.root, statement.entries,
                                                 statement.requests):
        return CheckpointCheck(statement, problems)
    by_id = {leaf.request_id: leaf for leaf in leaves}
    named, unnamed = statement.located(now)
    for rid in named:
        ref = f"R-{rid}"
        if rid not in present:
            problems.append(f"{ref} was deleted (it and its history were sealed)")
        elif rid not in by_id:
            problems.append(f"{ref}'s history was removed (it was sealed)")
        else:
            problems.append(f"{ref}'s history up to the checkpoint was rewritten, truncated "
                            "or replaced")
    if unnamed or not named:
        problems.append(
            "the sealed history changed in more requests than the checkpoint can name "
            f"(request ids ≡ {', '.join(str(b) for b in unnamed) or '?'} mod 4)")
    problems.append(f"sealed {statement.requests} requests and {statement.entries} entries "
                    f"up to entry {statement.upto}; found {now.requests} and {now.entries}")
    return CheckpointCheck(statement, problems)


# ---------------------------------------------------------------------- the weekly report

@dataclass(frozen=True)
class PartnerFigures:
    """How requests between an office and one partner went (both directions)."""

    partner: str
    open: int
    overdue: int
    median_ack_hours: float | None
    median_answer_days: float | None
    answered: int
    on_time: int
    p90_ack_hours: float | None = None
    p90_answer_days: float | None = None
    #: Requests partly answered now (some measures settled, others still owed).
    partly: int = 0

    @property
    def on_time_share(self) -> float | None:
        return self.on_time / self.answered if self.answered else None


class PartyRequest(Protocol):
    """What the partner figures need of a request (a full ``Request`` or a board row)."""

    @property
    def id(self) -> int: ...
    @property
    def status(self) -> Status: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def due_at(self) -> datetime: ...


#: When a request was first acknowledged (an answer counts as one) and first answered.
FirstMoment = Callable[[int, str], datetime | None]


def partner_figures(by_partner: dict[str, list[PartyRequest]], first: FirstMoment,
                    now: datetime) -> list[PartnerFigures]:
    """Per partner office: open and overdue now; median and 90th percentile time to
    acknowledge (hours) and to answer (days), and the share answered by the due date, over all
    their requests so far. The one computation behind the weekly report and the board."""
    rows = []
    for partner, items in sorted(by_partner.items()):
        acks: list[float] = []
        answers: list[float] = []
        on_time = 0
        for request in items:
            acked = first(request.id, "acknowledged") or first(request.id, "answered")
            answered = first(request.id, "answered")
            if acked:
                acks.append((acked - request.created_at).total_seconds() / 3600)
            if answered:
                answers.append((answered - request.created_at).total_seconds() / 86400)
                on_time += answered <= request.due_at
        rows.append(PartnerFigures(
            partner=partner,
            open=sum(r.status in PENDING_OR_PAUSED or r.status in HELD for r in items),
            overdue=sum(r.status in PENDING and r.due_at <= now for r in items),
            median_ack_hours=_tenths(median(acks) if acks else None),
            median_answer_days=_tenths(median(answers) if answers else None),
            answered=len(answers), on_time=on_time,
            p90_ack_hours=_tenths(quantile(acks, 0.9)),
            p90_answer_days=_tenths(quantile(answers, 0.9)),
            partly=sum(r.status is Status.PARTLY_ANSWERED for r in items)))
    return rows


def _tenths(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _first(entries: list[Entry], action: str) -> datetime | None:
    found = next((e for e in entries if e.action == action), None)
    return datetime.fromisoformat(found.at) if found else None


def weekly_figures(office: str, requests: list[Request], histories: dict[int, list[Entry]],
                   now: datetime) -> list[PartnerFigures]:
    """``partner_figures`` over ``office``'s requests, from their histories."""
    by_partner: dict[str, list[PartyRequest]] = {}
    audience = Audience(Place.REPORT, office)
    for request in (r for r in requests if visibility(r, audience, "status") is Shown.SHOWN):
        by_partner.setdefault(request.other_party(office), []).append(request)
    return partner_figures(by_partner,
                           lambda rid, action: _first(histories.get(rid, []), action), now)


def weekly_text(office_name: str, rows: list[PartnerFigures], w: Words | None = None) -> str:
    """The weekly report's partner figures in ``w``'s language (default English)."""
    w = w or words("en")
    lines = [w(m.WEEKLY_TITLE).format(office=office_name)]
    for row in rows:
        share = w.percent(row.on_time_share) if row.on_time_share is not None else "—"
        ack = w(m.HOURS_SHORT).format(value=w.tenths(row.median_ack_hours)) \
            if row.median_ack_hours is not None else "—"
        answer = w(m.DAYS_SHORT).format(value=w.tenths(row.median_answer_days)) \
            if row.median_answer_days is not None else "—"
        lines.append(w(m.WEEKLY_ROW).format(
            partner=row.partner, open=w.number(row.open), overdue=w.number(row.overdue),
            ack=ack, answer=answer, share=share, on_time=row.on_time, answered=row.answered))
    if not rows:
        lines.append(w(m.WEEKLY_NONE))
    partly = sum(row.partly for row in rows)
    if partly:  # partial execution (issue 24)
        lines.append(w.count(m.WEEKLY_PARTLY, partly))
    return "\n".join(lines)
