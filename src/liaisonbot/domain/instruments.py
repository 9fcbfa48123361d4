"""Legal instruments a request travels under (``via:NAME``): their clocks and what makes a
request complete. Profiles come from ``[instruments.NAME]`` in the config."""

from __future__ import annotations

from dataclasses import dataclass

from liaisonbot.domain.deadlines import Deadline
from liaisonbot.domain.durations import Duration
from liaisonbot.domain.model import Confidentiality

#: Fields an instrument may require of a request, and the ``open`` option that carries each.
REQUIRABLE = {"basis": 'basis:"…"', "person": 'person:"…"', "measure": 'measure:"…"'}


@dataclass(frozen=True)
class Instrument:
    """One instrument's profile. ``due``/``urgent`` None: no legal deadline (the policy's
    per-kind default applies, or what the offices agree with ``due:``)."""

    slug: str
    name: str
    source: str
    short: str = ""
    ack_within: Duration | None = None
    due: Duration | None = None
    urgent: Duration | None = None
    requires: tuple[str, ...] = ()
    ack_cite: str = ""
    due_cite: str = ""
    urgent_cite: str = ""
    #: Deadlines that run from events (``[instruments.NAME.deadlines.DEADLINE]``).
    deadlines: tuple[Deadline, ...] = ()
    #: ``eu``: only between offices of EU Member States bound by it (less ``not_bound``).
    scope: str = ""
    not_bound: tuple[str, ...] = ()
    #: The default level of its requests (``conf``; Rome Statute art. 87(3) makes ICC
    #: requests confidential), and the article that says so (``conf_cite``).
    conf: Confidentiality = Confidentiality.RESTRICTED
    conf_cite: str = ""

    @property
    def label(self) -> str:
        return self.short or self.slug.upper()

    def due_for(self, *, urgent: bool) -> Duration | None:
        """The instrument's answer clock (its urgent one for urgent requests), if it has one."""
        if self.deadlines:  # its deadlines run from events: nothing is counted from opening
            return None
        if urgent and self.urgent is not None:
            return self.urgent
        return self.due

    def cite_for(self, *, urgent: bool) -> str:
        """The article behind the answer clock ``due_for`` gives."""
        if self.deadlines:
            return ""
        if urgent and self.urgent is not None:
            return self.urgent_cite
        return self.due_cite if self.due is not None else ""

    def events(self) -> tuple[str, ...]:
        """The events its deadlines run from or are met by, in the order of ``EVENTS``."""
        from liaisonbot.domain.deadlines import EVENTS
        named = {d.start for d in self.deadlines} | {d.met_by for d in self.deadlines}
        return tuple(e for e in EVENTS if e in named)

    def missing(self, given: dict[str, str]) -> list[str]:
        """The required fields that ``given`` (field → text) lacks, in the profile's order."""
        return [name for name in self.requires if not given.get(name, "").strip()]


def clock_text(duration: Duration) -> str:
    """``7d`` → ``7 d``, ``24h`` → ``24 h``: a clock as a card shows it."""
    return f"{duration.amount} {duration.unit}"
