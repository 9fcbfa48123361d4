"""Legal instruments a request travels under (``via:NAME``): their clocks and what makes a
request complete. Profiles come from ``[instruments.NAME]`` in the config."""

from __future__ import annotations

from dataclasses import dataclass

from liaisonbot.domain.durations import Duration

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

    @property
    def label(self) -> str:
        return self.short or self.slug.upper()

    def due_for(self, *, urgent: bool) -> Duration | None:
        """The instrument's answer clock (its urgent one for urgent requests), if it has one."""
        if urgent and self.urgent is not None:
            return self.urgent
        return self.due

    def cite_for(self, *, urgent: bool) -> str:
        """The article behind the answer clock ``due_for`` gives."""
        if urgent and self.urgent is not None:
            return self.urgent_cite
        return self.due_cite if self.due is not None else ""

    def missing(self, given: dict[str, str]) -> list[str]:
        """The required fields that ``given`` (field → text) lacks, in the profile's order."""
        return [name for name in self.requires if not given.get(name, "").strip()]


def clock_text(duration: Duration) -> str:
    """``7d`` → ``7 d``, ``24h`` → ``24 h``: a clock as a card shows it."""
    return f"{duration.amount} {duration.unit}"
