"""The Babel extractor for the cogs (``babel.cfg``): their marked messages, plus every name Discord shows.

Messages marked in the code (``t._``, ``t.ngettext``, ``N_``, ``locale_str``…) are found as in any
Python file. Command, group and option names are not marked one by one (discord.py hands every name
to the translator itself), so the extractor imports the cog module and walks its application
commands: each name is extracted with its gettext context (``command``, ``option``), exactly as
``bot.i18n.CatalogTranslator`` will look it up; descriptions and choice names too.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from babel.messages.extract import extract_python
from discord import app_commands
from discord.ext import commands

from bot.i18n import COMMAND, OPTION

__all__ = ["extract", "walk_commands"]

#: (line, funcname, message(s), comments), as Babel's extractors yield them.
Extracted = tuple[int, str, Any, list[str]]


def _module_name(path: str) -> str:
    parts = Path(path).resolve().with_suffix("").parts
    for root in ("cogs", "bot"):
        if root in parts:
            return ".".join(parts[len(parts) - parts[::-1].index(root) - 1 :])
    raise ValueError(f"{path} is not in the cogs or bot package")


def _line(obj: Any, default: int) -> int:
    try:
        return inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return default


def walk_commands(
    items: Collection[app_commands.Command[Any, ..., Any] | app_commands.Group],
) -> Iterator[tuple[str | None, str, Any]]:
    """(context, message, where) for every name, description and choice of ``items`` and their
    children. ``context`` is None for descriptions and choice names."""
    for item in items:
        yield COMMAND, item.name, item
        yield None, str(item.description), item
        if isinstance(item, app_commands.Group):
            yield from walk_commands(item.commands)
            continue
        for parameter in item.parameters:
            yield OPTION, parameter.name, item
            yield None, str(parameter.description), item
            for choice in parameter.choices:
                yield None, str(choice.name), item


def _cog_commands(module: Any) -> list[app_commands.Command[Any, ..., Any] | app_commands.Group]:
    found: list[app_commands.Command[Any, ..., Any] | app_commands.Group] = []
    for value in vars(module).values():
        if not (
            inspect.isclass(value) and issubclass(value, commands.Cog) and value.__module__ == module.__name__
        ):
            continue
        cog = value.__new__(value)  # builds the cog's app commands (and its group) without a bot
        group = cog.app_command
        found.extend([group] if group is not None else cog.get_app_commands())
    return found


def extract(
    fileobj: IO[bytes], keywords: Mapping[str, Any], comment_tags: Collection[str], options: Mapping[str, Any]
) -> Iterator[Extracted]:
    """Babel extraction method (see ``babel.cfg``)."""
    python: Any = extract_python  # Babel's annotation of what it yields is not the extractor protocol
    yield from python(fileobj, keywords, comment_tags, options)
    module = importlib.import_module(_module_name(getattr(fileobj, "name", "")))
    for context, message, where in walk_commands(_cog_commands(module)):
        if not message:
            continue
        line = _line(getattr(where, "callback", None) or type(where), 1)
        if context is None:
            yield line, "_", message, []
        else:
            yield line, "pgettext", (context, message), []
