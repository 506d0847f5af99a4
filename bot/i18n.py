"""Translations: the catalogs, the words of one locale, and the translator of the slash commands.

The source language is en-US: every message is written in English in the code, marked for
translation, and looked up at run time in the reader's catalog. Catalogs are gettext ``.po`` files in
``bot/locales/`` (``<catalog>.po``, the format Weblate, Crowdin and Poedit edit), read with Babel and
compiled in memory the first time they are needed (``load_catalogs()`` at start-up: a broken file
stops the bot there). Fuzzy and empty entries count as untranslated: the reader gets the English.

Marking, so that ``make i18n-extract`` (pybabel extract, ``babel.cfg``) finds every message:

- ``t._("Deleted **{label}**.", label=...)``: a message in the locale of ``t`` (a ``Tr``);
- ``t.ngettext("{count} link", "{count} links", n)``: plural forms from the catalog (``{count}`` is
  ``n`` as a number of that locale unless given);
- ``t.pgettext("command", "create")``: a message with a context (the names of commands and options);
- ``N_("...")``: a message defined at import time (tables, defaults), translated later with ``t._``;
- ``locale_str("...")``: command and option descriptions and choice names, translated by ``Translator``.

Placeholders are named (``{slug}``), never positional. Which ``Tr`` to use: ``for_user(interaction)``
for a reply (the user's Discord language), ``for_locale(guild_settings.locale)`` for a post to the
server's log channel (the server's language as last seen, see ``bot.tree``),
``for_accept_language(header)`` for what the HTTP API shows people (the ``Accept-Language`` header).
"""

from __future__ import annotations

import gettext
import io
import logging
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final

import discord
from babel import negotiate_locale
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from discord import app_commands
from discord.app_commands import TranslationContextLocation, locale_str

__all__ = [
    "COMMAND",
    "LANGUAGES",
    "LOCALES_DIR",
    "N_",
    "OPTION",
    "SOURCE",
    "SOURCE_LOCALE",
    "CatalogTranslator",
    "Tr",
    "catalog_for",
    "for_accept_language",
    "for_locale",
    "for_user",
    "load_catalogs",
    "locale_str",
    "negotiate",
]

log = logging.getLogger(__name__)

#: The language the messages are written in.
SOURCE_LOCALE: Final = "en-US"

#: Discord locale → its catalog, ``bot/locales/<catalog>.po``. Adding a language is its ``.po`` file
#: and one line here (see the README).
LANGUAGES: Final[Mapping[str, str]] = {
    "de": "de",
    "fr": "fr",
    "es-ES": "es_ES",
    "nl": "nl",
    "pt-BR": "pt_BR",
}

LOCALES_DIR: Final = Path(__file__).with_name("locales")

#: gettext contexts of the names Discord shows: commands and groups, and options. Names are short
#: identifiers that could clash with other messages ("set", "delete"), hence the contexts.
COMMAND: Final = "command"
OPTION: Final = "option"


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown (``t._(message)``)."""
    return message


def catalog_for(locale: str | discord.Locale | None) -> str | None:
    """The catalog serving ``locale`` (a Discord locale), or None for the source language.

    A locale without a catalog of its own gets one of the same language (``es-419`` → ``es-ES``),
    else the source language (en-US).
    """
    if locale is None:
        return None
    code = locale.value if isinstance(locale, discord.Locale) else str(locale)
    if code in LANGUAGES:
        return LANGUAGES[code]
    language = code.split("-", 1)[0].lower()
    for known, catalog in LANGUAGES.items():
        if known.split("-", 1)[0].lower() == language:
            return catalog
    return None


@cache
def _translations(catalog: str) -> Translations:
    """The compiled catalog ``bot/locales/<catalog>.po`` (fuzzy entries left out)."""
    path = LOCALES_DIR / f"{catalog}.po"
    with path.open("rb") as file:
        po = read_po(file, locale=catalog)
    buffer = io.BytesIO()
    write_mo(buffer, po, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer)


def load_catalogs() -> None:
    """Read and compile every catalog now (start-up), so that a broken one stops the bot at once."""
    for catalog in LANGUAGES.values():
        _translations(catalog)


def _format(text: str, params: Mapping[str, object]) -> str:
    return text.format_map(params) if params else text


class Tr:
    """The messages of one locale. Get one with ``for_user`` or ``for_locale``."""

    __slots__ = ("_babel", "_t", "locale")

    def __init__(self, locale: str, translations: gettext.NullTranslations, babel_locale: str) -> None:
        #: The Discord locale whose catalog this is (``SOURCE_LOCALE`` for English).
        self.locale = locale
        self._t = translations
        self._babel = babel_locale

    def __repr__(self) -> str:
        return f"Tr({self.locale!r})"

    @property
    def translations(self) -> gettext.NullTranslations:
        """The compiled catalog itself (for Jinja2's i18n extension, whose placeholders are ``%(x)s``)."""
        return self._t

    def _(self, message: str, /, **params: object) -> str:
        """``message`` in this locale, its ``{placeholders}`` filled in from ``params``."""
        return _format(self._t.gettext(message), params)

    def pgettext(self, context: str, message: str, /, **params: object) -> str:
        return _format(self._t.pgettext(context, message), params)

    def ngettext(self, singular: str, plural: str, count: int, /, **params: object) -> str:
        """The plural form for ``count`` of this locale; ``{count}`` is ``count`` as a number of it."""
        params.setdefault("count", self.number(count))
        return _format(self._t.ngettext(singular, plural, count), params)

    def number(self, value: float) -> str:
        """``value`` written as readers of this locale write numbers (1,234 / 1.234 / 1 234)."""
        return format_decimal(value, locale=self._babel)

    def join(self, items: Iterable[str]) -> str:
        """ "a, b and c" in this locale."""
        listed = list(items)
        return format_list(listed, locale=self._babel) if listed else ""

    def join_or(self, items: Iterable[str]) -> str:
        """ "a, b or c" in this locale."""
        listed = list(items)
        return format_list(listed, style="or", locale=self._babel) if listed else ""

    def command_name(self, name: str) -> str:
        """A command or group name as users of this locale see it in Discord."""
        return self.pgettext(COMMAND, name)

    def option_name(self, name: str) -> str:
        """An option name as users of this locale see it in Discord."""
        return self.pgettext(OPTION, name)

    def command(self, path: str, /, **options: str) -> str:
        """A command as this locale's users type it, in backticks: ``/link adopt slug:x`` becomes
        ``/link übernehmen kürzel:x`` for German. ``options`` (name → value) follow the names;
        an empty value shows just ``name:``. Values must not contain backticks."""
        words = ["/" + " ".join(self.command_name(word) for word in path.split())]
        words.extend(f"{self.option_name(name)}:{value}" for name, value in options.items())
        return "`" + " ".join(words) + "`"


@cache
def _tr(catalog: str | None) -> Tr:
    if catalog is None:
        return Tr(SOURCE_LOCALE, gettext.NullTranslations(), "en_US")
    locale = next(code for code, name in LANGUAGES.items() if name == catalog)
    return Tr(locale, _translations(catalog), catalog)


#: The messages as written (en-US): the default of the pure renderers.
SOURCE: Final[Tr] = _tr(None)


def for_locale(locale: str | discord.Locale | None) -> Tr:
    """The messages for ``locale`` (a Discord locale code); unknown or None: en-US."""
    return _tr(catalog_for(locale))


def for_user(interaction: discord.Interaction[Any] | None) -> Tr:
    """The messages for the user of ``interaction`` (their Discord language)."""
    return for_locale(getattr(interaction, "locale", None))


#: Which names need a gettext context (descriptions and choice names are plain messages).
_CONTEXTS: Final[Mapping[TranslationContextLocation, str]] = {
    TranslationContextLocation.command_name: COMMAND,
    TranslationContextLocation.group_name: COMMAND,
    TranslationContextLocation.parameter_name: OPTION,
}


class CatalogTranslator(app_commands.Translator):
    """Names, descriptions and choice names of the slash commands, from the same catalogs.

    Set with ``tree.set_translator`` before any sync. Discord shows each user the strings of their
    locale; interactions still carry the English names, so routing does not change.
    """

    async def load(self) -> None:
        load_catalogs()

    async def translate(
        self, string: locale_str, locale: discord.Locale, context: app_commands.TranslationContextTypes
    ) -> str | None:
        catalog = catalog_for(locale)
        if catalog is None:
            return None
        tr = _tr(catalog)
        message = string.message
        location_context = _CONTEXTS.get(context.location)
        text = tr.pgettext(location_context, message) if location_context else tr._(message)
        return None if text == message else text


# --------------------------------------------------------------------------------------------------
# HTTP: Accept-Language
# --------------------------------------------------------------------------------------------------

#: Language ranges read from one Accept-Language header (the rest is ignored).
_ACCEPT_MAX = 32


def _preferences(header: str) -> list[str]:
    """The language ranges of an Accept-Language header, most wanted first (RFC 9110: ``q`` weights,
    ties in the order given; ``q=0`` and ``*`` say nothing we can serve)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:_ACCEPT_MAX]):
        tag, *params = (piece.strip() for piece in part.split(";"))
        if not tag or tag == "*" or len(tag) > 35:
            continue
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = 0.0
        if 0.0 < weight <= 1.0:  # also drops nan
            ranked.append((-weight, index, tag))
    return [tag for _, _, tag in sorted(ranked)]


def _available() -> dict[str, str]:
    """What a client may ask for (lowercase) → the locale serving it: en-US, every catalog's Discord
    locale, and each one's bare language (``en``, ``pt``), as ``catalog_for`` serves Discord users."""
    served = {SOURCE_LOCALE.lower(): SOURCE_LOCALE}
    for locale in (SOURCE_LOCALE, *LANGUAGES):
        served.setdefault(locale.lower(), locale)
        served.setdefault(locale.split("-", 1)[0].lower(), locale)
    return served


def negotiate(accept_language: str | None) -> str:
    """The locale (``SOURCE_LOCALE`` or a key of ``LANGUAGES``) that best serves an ``Accept-Language``
    header, chosen with Babel's ``negotiate_locale``; en-US when nothing matches (or no header)."""
    if not accept_language:
        return SOURCE_LOCALE
    available = _available()
    found = negotiate_locale(_preferences(accept_language), list(available), sep="-")
    return available.get(found.lower(), SOURCE_LOCALE) if found else SOURCE_LOCALE


def for_accept_language(accept_language: str | None) -> Tr:
    """The messages for the reader of an HTTP answer (its request's ``Accept-Language`` header)."""
    return for_locale(negotiate(accept_language))
