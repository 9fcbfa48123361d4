"""Figures and checks the board shows, computed from rows already read (no I/O here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup, escape

from liaisonbot.domain.audit import ALL_LEGACY, GENESIS, Seal, legacy_sealed, link_hash
from liaisonbot.service import messages as m
from liaisonbot.service.i18n import Words, words
from liaisonbot.service.ports import HistoryItem
from liaisonbot.service.reports import PartnerFigures

ACK_ACTIONS = ("acknowledged", "answered")


@dataclass(frozen=True)
class ChainCheck:
    """The audit chain around one request's entries."""

    ok: bool
    entries: int
    broken_entry: int | None = None
    reason: str = ""


def check_entries(sealed: list[tuple[HistoryItem, str | None, str | None]],
                  head: tuple[int, str] | None, seal: Seal = ALL_LEGACY,
                  tail: str | None = None) -> ChainCheck:
    """Each entry hashes to its stored hash and follows the entry before it. A legacy entry
    (``domain.audit``) follows the entry with the id before it and is followed by the one
    after it (or ends the legacy chain); a linked entry follows the request's previous entry,
    and the request's last entry is the one its row records (``tail``)."""
    previous: str | None = None
    for item, before, after in sealed:
        entry = item.entry
        if entry.id > seal.legacy_upto:
            expected_prev = previous or GENESIS
            if link_hash(item.prev_hash, entry) != item.hash:
                return ChainCheck(False, len(sealed), entry.id, m.BOARD_CHAIN_CHANGED)
            if item.prev_hash != expected_prev:
                return ChainCheck(False, len(sealed), entry.id,
                                  m.BOARD_CHAIN_NOT_AFTER)
            previous = item.hash
            continue
        legacy_prev = GENESIS if entry.id == 1 else before
        if not legacy_sealed(item.prev_hash, entry, item.hash):
            return ChainCheck(False, len(sealed), entry.id, m.BOARD_CHAIN_CHANGED)
        if item.prev_hash != legacy_prev:
            return ChainCheck(False, len(sealed), entry.id, m.BOARD_CHAIN_NOT_AFTER)
        if seal is not ALL_LEGACY and entry.id == seal.legacy_upto:
            after = None  # the next id is a linked entry, of whichever request
        if after is not None and after != item.hash:
            return ChainCheck(False, len(sealed), entry.id + 1, m.BOARD_CHAIN_NOT_BEFORE)
        end = head if seal is ALL_LEGACY else (seal.legacy_upto, seal.legacy_hash)
        if after is None and end != (entry.id, item.hash):
            return ChainCheck(False, len(sealed), entry.id, m.BOARD_CHAIN_NO_NEXT)
        previous = item.hash
    if seal is not ALL_LEGACY and sealed and tail != previous:
        return ChainCheck(False, len(sealed), sealed[-1][0].entry.id,
                          m.BOARD_CHAIN_NO_NEXT)
    return ChainCheck(True, len(sealed))


def partner_chart(rows: list[PartnerFigures], name: Callable[[str], str] = str,
                  w: Words | None = None) -> Markup:
    """A small horizontal bar chart (SVG, server-rendered): open and overdue requests and the
    share answered on time, per partner, labelled in ``w``'s language (English by default).
    Colours come from presentation attributes (the CSP allows no inline styles)."""
    if not rows:
        return Markup("")
    w = w or words("en")
    bar_h, gap, label_w, width = 14, 10, 170, 560
    scale_max = max(max(r.open for r in rows), 1)
    height = len(rows) * (2 * bar_h + gap) + 24
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'viewBox="0 0 {width} {height}" aria-labelledby="chart-title">'
             f'<title id="chart-title">{escape(w(m.BOARD_CHART_TITLE))}</title>']
    span = (width - label_w - 60) / 2
    for i, row in enumerate(rows):
        y = 20 + i * (2 * bar_h + gap)
        open_w = span * row.open / scale_max
        late_w = span * row.overdue / scale_max
        share = row.on_time_share
        full = name(row.partner)
        label = escape(full if len(full) <= 26 else full[:25] + "…")
        on_time = escape(w(m.BOARD_CHART_ON_TIME).format(
            share="—" if share is None else w.percent(share)))
        parts.append(f'<text x="0" y="{y + bar_h}" font-size="12">{label}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{open_w:.1f}" height="{bar_h}" '
                     f'fill="#7a8fa6"><title>{escape(w.count(m.BOARD_CHART_OPEN, row.open))}'
                     '</title></rect>')
        parts.append(f'<rect x="{label_w}" y="{y + bar_h}" width="{late_w:.1f}" '
                     f'height="{bar_h}" fill="#b3261e"><title>'
                     f'{escape(w.count(m.BOARD_CHART_OVERDUE, row.overdue))}</title></rect>')
        x2 = label_w + span + 30
        share_w = span * (share or 0)
        parts.append(f'<rect x="{x2}" y="{y}" width="{span:.1f}" height="{bar_h}" '
                     'fill="#e4e7eb"/>')
        parts.append(f'<rect x="{x2}" y="{y}" width="{share_w:.1f}" height="{bar_h}" '
                     f'fill="#2e7d32"><title>{on_time}</title></rect>')
    parts.append(f'<text x="{label_w}" y="12" font-size="11">{escape(w(m.BOARD_CHART_BARS))}'
                 f'</text><text x="{label_w + span + 30}" y="12" font-size="11">'
                 f'{escape(w(m.BOARD_CHART_SHARE))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
