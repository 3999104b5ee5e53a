"""The pages' languages: Polish and English labels (Babel catalogues), dates and numbers by locale.

The catalogues are the .po files in ``translations/<locale>/LC_MESSAGES/messages.po``, compiled
in memory when first used (no build step: a fresh clone works). The message ids are the English
labels, so English needs no catalogue entries and an untranslated label shows in English.

The language of a request: ``?lang=pl|en`` (remembered in a cookie), else the cookie, else the
browser's Accept-Language, else English.
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from fastapi import Request

LANGUAGES = ("en", "pl")
DEFAULT = "en"
COOKIE = "zaplecze_lang"
DOMAIN = "messages"
TRANSLATIONS = Path(__file__).parent / "translations"


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalogue of a language (English: the message ids themselves)."""
    po = TRANSLATIONS / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def _accepted(header: str) -> str | None:
    """The best of our languages in an Accept-Language header, by its q values."""
    offers = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = Decimal(1)
        if params.strip().startswith("q="):
            try:
                quality = Decimal(params.strip()[2:])
            except InvalidOperation:
                quality = Decimal(0)
        language = tag.strip().lower().split("-")[0]
        if language in LANGUAGES and quality > 0:
            offers.append((-quality, position, language))
    return min(offers)[2] if offers else None


def requested(request: Request) -> str | None:
    """The language asked for with ``?lang=``, when it is one of ours."""
    asked = request.query_params.get("lang", "")
    return asked if asked in LANGUAGES else None


def language_of(request: Request) -> str:
    chosen = requested(request)
    if chosen:
        return chosen
    remembered = request.cookies.get(COOKIE, "")
    if remembered in LANGUAGES:
        return remembered
    return _accepted(request.headers.get("accept-language", "")) or DEFAULT


class Formats:
    """Labels, dates and numbers in one language, for the templates."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.locale = Locale.parse("pl_PL" if language == "pl" else "en_GB")
        self._translations = translations(language)

    def gettext(self, message: str) -> str:
        return self._translations.gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return self._translations.ngettext(singular, plural, count)

    def date(self, value: dt.date | str | None) -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value[:10])
            except ValueError:
                return value
        return format_date(value, format="medium", locale=self.locale)

    def datetime(self, value: dt.datetime | str | None) -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError:
                return value
        return format_datetime(value, format="short", locale=self.locale, tzinfo=dt.UTC)

    def number(self, value: Decimal | int | str | None) -> str:
        """A decimal in the locale's separators, exactly: every digit kept, none invented.
        Strings and ints are read as ``Decimal``; a float is refused."""
        if value is None or value == "":
            return ""
        if isinstance(value, float):
            raise TypeError("numbers on pages are exact: pass a Decimal, not a float")
        if not isinstance(value, Decimal):
            try:
                value = Decimal(str(value))
            except InvalidOperation:
                return str(value)
        if not value.is_finite():
            return str(value)
        exponent = value.as_tuple().exponent
        places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        pattern = "#,##0." + "0" * places if places else "#,##0"
        return format_decimal(value, format=pattern, locale=self.locale,
                              decimal_quantization=False)
