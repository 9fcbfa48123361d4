"""A new request's confidentiality level: the instrument's default, what ``conf:`` may change,
and the fail-safe check that someone on each side can read a confidential request.

- An instrument profile's ``conf`` sets the level of its requests (``icc``: confidential, Rome
  Statute art. 87(3)); without ``via:`` (or a ``conf``) the level is ``restricted``.
- ``conf:`` on ``open`` raises the level always; it lowers it (confidential → restricted) only
  when the actor is one of the requesting office's listed members.
- A confidential request goes only between offices that list members: its substance reaches
  nobody but them (``domain.visibility``), so to or from an office without a member list it
  would reach nobody at all. ``open`` refuses it, naming the office.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from liaisonbot.domain.directory import Directory
from liaisonbot.domain.instruments import Instrument
from liaisonbot.domain.model import Confidentiality, Office
from liaisonbot.service import messages as m
from liaisonbot.service.clocks import ClockRefusal
from liaisonbot.service.i18n import Words

_RANK = {Confidentiality.RESTRICTED: 0, Confidentiality.CONFIDENTIAL: 1}


@dataclass(frozen=True)
class Level:
    """The level decided for a new request; ``by_default`` when the instrument set it."""

    level: Confidentiality
    by_default: bool = False


def level_for(given: Confidentiality | None, instrument: Instrument | None, *,
              requesting: Office, requested: Office, actor: str) -> Level:
    """The level of a request ``actor`` opens from ``requesting`` to ``requested`` with
    ``conf:given`` (None: not typed) under ``instrument``; raises ``ClockRefusal`` (one
    sentence) for a lowering by someone who is not a listed member of the requesting office,
    and for a confidential request to or from an office that lists no members."""
    default = instrument.conf if instrument else Confidentiality.RESTRICTED
    level = given or default
    if _RANK[level] < _RANK[default] and not requesting.is_member(actor):
        assert instrument is not None
        raise ClockRefusal(m.CONF_LOWER_REFUSED,
                           instrument=m.instrument_label(instrument.label),
                           cite=_cited(instrument), office=requesting.name,
                           level=m.LEVEL_NAMES[level.value])
    if level is Confidentiality.CONFIDENTIAL:
        for office in (requested, requesting):
            if not office.members:
                raise ClockRefusal(m.CONF_NOBODY, office=office.name, slug=office.slug)
    return Level(level, by_default=given is None and level is not Confidentiality.RESTRICTED)


def _cited(instrument: Instrument) -> str:
    return f" ({instrument.conf_cite})" if instrument.conf_cite else ""


def default_notice(instrument: Instrument, w: Words) -> str:
    """The reply's line saying a request is confidential because its instrument says so, in
    ``w``'s language."""
    return w(m.CONF_BY_DEFAULT).format(instrument=w.instrument(instrument.label),
                                       cite=_cited(instrument))


def unreachable(directory: Directory) -> list[str]:
    """``check-config``'s notes: for each instrument whose requests are confidential by
    default, the offices that list no members, so that ``open`` refuses every such request
    to or from them (unless a listed member of the requesting office lowers it with
    ``conf:restricted``, which an office without members cannot do)."""
    lacking = [o.slug for o in directory.offices if not o.members]
    notes = []
    for instrument in _confidential(directory.instruments.values()):
        if lacking:
            notes.append(
                f"instruments.{instrument.slug}.conf: requests via {instrument.slug} are "
                f"confidential, and {', '.join(lacking)} list no members: open refuses such "
                "a request to or from them (nobody there could read it) unless a listed "
                "member of the requesting office opens it with conf:restricted; list their "
                "members to let them receive it")
    return notes


def _confidential(instruments: Iterable[Instrument]) -> list[Instrument]:
    return [i for i in instruments if i.conf is Confidentiality.CONFIDENTIAL]
