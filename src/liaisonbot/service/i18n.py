"""Languages: each reader hears the bot in its office's language.

The English sentences in :mod:`liaisonbot.service.messages` are the gettext msgids; the
catalogs are ``locale/LANG/LC_MESSAGES/liaisonbot.po`` (Babel). A compiled ``.mo`` is used
when the package install built one (``setup.py``'s build hook) and it is not older than its
``.po``; otherwise the ``.po`` is compiled in memory with Babel on first use, so an editable
install or a source checkout speaks every language too. Dates, weekdays, months, relative
times and numbers come from Babel's CLDR data for the reader's locale.
"""

from __future__ import annotations

import gettext
import io
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_timedelta
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

from liaisonbot.service import messages as m

DOMAIN = "liaisonbot"
SOURCE = "en"  # the msgids are English: no catalog needed
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"


class UnknownLanguage(ValueError):
    """A language with no catalog."""


def languages() -> list[str]:
    """The languages the bot speaks: English and every language with a catalog."""
    found = {p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.[pm]o")}
    return sorted(found | {SOURCE})


def catalog_path(language: str, ext: str = "po") -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.{ext}"


@cache
def translator(language: str) -> gettext.NullTranslations:
    """The gettext translations for ``language`` (English: the msgids themselves)."""
    if language == SOURCE:
        return gettext.NullTranslations()
    po, mo = catalog_path(language), catalog_path(language, "mo")
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fp:
            return Translations(fp, domain=DOMAIN)
    if not po.exists():
        raise UnknownLanguage(language)
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:-[A-Z]{2})?$")


def is_language(code: str) -> bool:
    """A language code CLDR knows, written like ``de``, ``en`` or ``pt-BR``."""
    if not _LANGUAGE_CODE.match(code):
        return False
    try:
        Locale.parse(code.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return False
    return True


#: CLDR territories that are no state (groupings and private-use codes).
_NOT_STATES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})


def is_country(code: str) -> bool:
    """An ISO 3166-1 alpha-2 code CLDR names (``NL``, ``DE``, ``UA``…; ``XK`` for Kosovo)."""
    return (len(code) == 2 and code.isalpha() and code.isupper() and code not in _NOT_STATES
            and code in Locale("en").territories)


class Words:
    """One language's words, dates and numbers (``words(language)`` caches one each)."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.babel_locale = language.replace("-", "_")
        self.tr = translator(language)

    # ------------------------------------------------------------ sentences

    def __call__(self, msgid: str | tuple[str, str]) -> str:
        """The sentence in this language (the English msgid when it has no translation);
        a ``(context, msgid)`` pair is looked up with its context."""
        if isinstance(msgid, tuple):
            return self.tr.pgettext(*msgid)
        return self.tr.gettext(msgid) if msgid else msgid

    def count(self, forms: tuple[str, str], n: int) -> str:
        """A counted phrase with the language's plural rules: ``{count} request(s)``."""
        return self.tr.ngettext(forms[0], forms[1], n).format(count=self.number(n))

    def status(self, value: str) -> str:
        return self(m.STATUS_NAMES.get(value, value))

    def done(self, verb: str) -> str:
        return self(m.STATUS_VERB[verb])

    def kind(self, value: str) -> str:
        """A request kind (``evidence``) in this language; an unknown value as it is."""
        return self(m.KIND_NAMES[value]) if value in m.KIND_NAMES else value

    def level(self, value: str) -> str:
        """A confidentiality level (``restricted``, ``confidential``) in this language."""
        return self(m.LEVEL_NAMES[value]) if value in m.LEVEL_NAMES else value

    def instrument(self, label: str) -> str:
        """An instrument's label (``EIO`` → ``DEE``): the catalog's word for the configured
        English label, or the label as configured when the catalog has none."""
        return self(m.instrument_label(label)) if label else label

    def source(self, text: str) -> str:
        """An instrument's legal source, translated like its label."""
        return self(m.instrument_source(text)) if text else text

    # ------------------------------------------------------------ numbers and dates

    def number(self, value: float) -> str:
        return format_decimal(value, locale=self.babel_locale)

    def tenths(self, value: float) -> str:
        """A measured figure with one decimal: ``2.5`` (en), ``2,5`` (fr, uk)."""
        return format_decimal(value, "#,##0.0", locale=self.babel_locale)

    def percent(self, share: float) -> str:
        return format_percent(share, locale=self.babel_locale)

    def local_time(self, moment: datetime, tz: str) -> str:
        """``Wed 2026-12-30 17:30 CET`` (en), ``mer. 30 déc. 2026, 17:30 CET`` (fr)…"""
        return _local_time(self.babel_locale, self(m.DATE_TIME), moment, tz)

    def weekday_time(self, moment: datetime, tz: str) -> str:
        """``Fri 19:00 CET`` (en), ``ven. 19:00 CET`` (fr)…: a wall clock this week."""
        return _local_time(self.babel_locale, self(m.WEEKDAY_TIME), moment, tz)

    def day(self, day: date) -> str:
        """``Fri 2026-12-25`` (en), ``ven. 25 déc. 2026`` (fr)…"""
        return format_date(day, self(m.DATE_ONLY), locale=self.babel_locale)

    def language_names(self, codes: Iterable[str]) -> str:
        """Languages by their names in this language, as a list: ``German and English``,
        ``allemand et anglais``…; a code Babel does not know stays as written."""
        return format_list([_language_name(self.babel_locale, code) for code in codes],
                           locale=self.babel_locale)

    def country_name(self, code: str) -> str:
        """``DE`` → ``Germany``, ``Allemagne``, ``Німеччина``…"""
        return Locale.parse(self.babel_locale).territories.get(code, code)

    def relative(self, moment: datetime, now: datetime) -> str:
        """``in 5 days`` / ``5 days ago`` (days from 1.5 days, hours from 1.5 hours, else
        minutes), in this language's CLDR wording."""
        seconds = (moment - now).total_seconds()
        if abs(seconds) < 60:
            return self(m.NOW)
        days = abs(seconds) / 86400
        unit: Literal["day", "hour", "minute"]
        if days >= 1.5:
            unit, size = "day", 86400
        elif abs(seconds) >= 5400:
            unit, size = "hour", 3600
        else:
            unit, size = "minute", 60
        span = round(abs(seconds) / size) * size
        return _relative(self.babel_locale, span if seconds >= 0 else -span, unit)

    def when(self, moment: datetime, tz: str, now: datetime) -> str:
        """``Wed 2026-12-30 17:30 CET (in 5 days)``, in this language."""
        return f"{self.local_time(moment, tz)} ({self.relative(moment, now)})"

    def clock(self, text: str) -> str:
        """An instrument's clock as a card shows it (``7 d``, ``24 h``, ``5 bd``, ``2 w``),
        in this language; anything else unchanged."""
        amount, _, unit = text.partition(" ")
        pattern = {"d": m.DAYS_SHORT, "h": m.HOURS_SHORT, "bd": m.BUSINESS_DAYS_SHORT,
                   "w": m.WEEKS_SHORT}.get(unit)
        if pattern is None or not amount.isdigit():
            return text
        return self(pattern).format(value=self.number(int(amount)))

    def size(self, size: int) -> str:
        for unit in ("bytes", "KB", "MB", "GB"):
            if size < 1024 or unit == "GB":
                if unit == "bytes":
                    return self.count(m.N_BYTES, size)
                return f"{self.tenths(size)} {unit}"
            size /= 1024  # type: ignore[assignment]
        return str(size)


# A command writes the same due date for several readers, and a day's posts share a few
# distances ("in 5 days"): Babel's formatting is done once per distinct value.
@lru_cache(maxsize=8192)
def _local_time(babel_locale: str, pattern: str, moment: datetime, tz: str) -> str:
    zone = ZoneInfo(tz)
    local = moment.astimezone(zone)
    text = format_datetime(local, pattern, tzinfo=zone, locale=babel_locale)
    return f"{text} {local.tzname() or tz}"


@lru_cache(maxsize=1024)
def _language_name(babel_locale: str, code: str) -> str:
    try:
        return Locale.parse(code.replace("-", "_")).get_display_name(babel_locale) or code
    except (ValueError, UnknownLocaleError):
        return code


@lru_cache(maxsize=4096)
def _relative(babel_locale: str, seconds: int, unit: Literal["day", "hour", "minute"]) -> str:
    return format_timedelta(timedelta(seconds=seconds), granularity=unit, threshold=1e9,
                            add_direction=True, locale=babel_locale)


@cache
def words(language: str) -> Words:
    return Words(language)
