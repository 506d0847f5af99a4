"""The catalogs and the marking of messages: what `make test` refuses before a translation ships.

- every catalog has every message of the template, none fuzzy or empty, with the source's placeholders;
- the template is what `make i18n-extract` would write from the code today;
- every localized command and option name keeps Discord's rules and is unique where it must be,
  every description and choice name fits;
- the cogs, the views, the pager and the embed builders pass no user-facing text to discord.py that is
  not marked, and the HTTP API builds no problem from words that are not;
- the command sync hash covers the translations.
"""

from __future__ import annotations

import ast
import io
import re
import string
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import discord
import jinja2
import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from discord import app_commands
from jinja2 import nodes

from bot import i18n
from bot.client import command_hash
from tests.fakes.discord import command_problems
from tests.fixtures.bot import WiredBot

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = i18n.LOCALES_DIR / "messages.pot"
CATALOGS = sorted(i18n.LANGUAGES.items())


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=locale)


def ids(catalog: Catalog) -> set[tuple[str, str | None]]:
    return {(key if isinstance(key, str) else key[0], msg.context) for msg in catalog if (key := msg.id)}


#: What a translation must keep as it is besides ``{name}``: the templates' ``%(name)s`` placeholders
#: and their HTML tags (a tag lost or added breaks the page).
_KEPT: Final = re.compile(r"%\(\w+\)s|</?(?:a|strong|code|span|em|b)\b[^>]*>")


def fields(text: str) -> set[str]:
    """The placeholders of a message (``{slug}`` → ``slug``, ``%(slug)s``) and its HTML tags."""
    names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    return names | set(_KEPT.findall(text))


def source_forms(message: Message) -> list[str]:
    return list(message.id) if isinstance(message.id, tuple | list) else [message.id]


def translations(message: Message) -> list[str]:
    string: Any = message.string  # typed differently across Babel releases
    forms = list(string) if isinstance(string, tuple | list) else [string]
    return [str(form or "") for form in forms]


# --------------------------------------------------------------------------------------------- catalogs


def test_every_language_has_its_catalog_and_unknown_locales_fall_back() -> None:
    for locale, name in CATALOGS:
        assert (i18n.LOCALES_DIR / f"{name}.po").is_file(), locale
        assert i18n.for_locale(locale).locale == locale
    assert i18n.for_locale("es-419").locale == "es-ES"  # same language, no catalog of its own
    assert i18n.for_locale("ja").locale == i18n.SOURCE_LOCALE
    assert i18n.for_locale(None).locale == i18n.SOURCE_LOCALE
    assert i18n.for_locale("en-GB").locale == i18n.SOURCE_LOCALE


@pytest.mark.parametrize(("locale", "name"), CATALOGS)
def test_a_catalog_translates_every_message_with_the_same_placeholders(locale: str, name: str) -> None:
    template = read(TEMPLATE)
    catalog = read(i18n.LOCALES_DIR / f"{name}.po", name)
    assert ids(catalog) >= ids(template), f"{name}.po misses messages: run make i18n-extract and translate"
    problems = []
    for message in catalog:
        if not message.id:
            continue
        where = f"{name}.po {message.context or ''}:{source_forms(message)[0]!r}"
        forms = translations(message)
        if message.fuzzy:
            problems.append(f"{where} is fuzzy")
        if not all(form and form.strip() for form in forms):
            problems.append(f"{where} is not translated")
            continue
        sources = source_forms(message)
        if len(sources) > 1 and len(forms) != catalog.num_plurals:
            problems.append(f"{where} has {len(forms)} plural forms, the language has {catalog.num_plurals}")
        for index, form in enumerate(forms):
            source = sources[min(index, len(sources) - 1)] if index else sources[0]
            wanted = fields(source) | (fields(sources[-1]) if len(sources) > 1 else set())
            if fields(form) != wanted and not (len(sources) > 1 and fields(form) == fields(source)):
                problems.append(f"{where} form {index} has placeholders {fields(form)}, the source {wanted}")
    assert not problems, "\n".join(problems)


def test_the_checks_see_a_broken_catalog() -> None:
    """The rules above, on a catalog with one of each mistake."""
    broken = read_po(
        io.BytesIO(
            b'msgid ""\nmsgstr ""\n"Language: de\\n"\n\n'
            b'#, fuzzy\nmsgid "Deleted **{link}**."\nmsgstr "Gel\xc3\xb6scht **{link}**."\n\n'
            b'msgid "Created **{link}**."\nmsgstr ""\n\n'
            b'msgid "Updated **{link}**: {changes}."\nmsgstr "Aktualisiert **{verkn\xc3\xbcpfung}**."\n\n'
            b'msgid "Created %(link)s in <strong>%(server)s</strong>."\n'
            b'msgstr "%(link)s in %(server)s erstellt."\n'
        )
    )
    messages = {msg.id: msg for msg in broken if msg.id}
    assert messages["Deleted **{link}**."].fuzzy
    assert not translations(messages["Created **{link}**."])[0]
    assert fields(translations(messages["Updated **{link}**: {changes}."])[0]) != {"link", "changes"}
    page = messages["Created %(link)s in <strong>%(server)s</strong>."]
    assert fields(source_forms(page)[0]) == {"%(link)s", "%(server)s", "<strong>", "</strong>"}
    assert fields(translations(page)[0]) != fields(source_forms(page)[0])  # the tags were lost


def test_the_template_is_what_the_code_marks() -> None:
    """`make i18n-extract` was run: the template has every marked message of the code, and no other."""
    with (ROOT / "babel.cfg").open() as file:
        method_map, options_map = parse_mapping_cfg(file)
    keywords = {
        "_": None,
        "N_": None,
        "ngettext": (1, 2),
        "pgettext": ((1, "c"), 2),
        "locale_str": None,
    }
    found = {
        (message if isinstance(message, str) else message[0], context)
        for _, _, message, _, context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords, strip_comment_tags=True
        )
    }
    template = ids(read(TEMPLATE))
    assert found - template == set(), "messages missing from the template: run make i18n-extract"
    assert template - found == set(), "messages no longer in the code: run make i18n-extract"


def test_the_catalogs_are_installed_with_the_package() -> None:
    """A non-editable install (the Docker image) must carry the .po files, or the bot cannot start."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        package_data = tomllib.load(file)["tool"]["setuptools"]["package-data"]["bot"]
    assert "locales/*.po" in package_data


def test_catalogs_compile_and_plural_forms_follow_the_language() -> None:
    i18n.load_catalogs()
    for locale, _ in CATALOGS:
        t = i18n.for_locale(locale)
        one = t.ngettext("{count} link", "{count} links", 1)
        many = t.ngettext("{count} link", "{count} links", 1234)
        assert one != many, locale
        assert t.number(1234) in many, locale
    assert i18n.for_locale("de").number(1234567) == "1.234.567"
    assert i18n.for_locale("fr").number(1234567) == "1\u202f234\u202f567"
    assert i18n.SOURCE.ngettext("{count} link", "{count} links", 1) == "1 link"


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("de", "de"),
        ("DE-at", "de"),  # case and region ignored when only the language has a catalog
        ("fr;q=0.9, nl;q=0.8", "fr"),
        ("nl;q=0.2, fr;q=0.9", "fr"),  # by weight, not by order
        ("ja, fr;q=0.9", "fr"),  # no catalog for the first: the next one
        ("en-GB, de;q=0.8", "en-US"),  # English wanted first: the source language
        ("pt-PT", "pt-BR"),  # the language's catalog, as for Discord's locales
        ("es-MX, es;q=0.9", "es-ES"),
        ("de;q=0, fr;q=0.1", "fr"),  # q=0: not acceptable
        ("ja", "en-US"),
        ("*", "en-US"),
        ("", "en-US"),
        (None, "en-US"),
        ("fr;q=abc, nl;q=nan", "en-US"),
        (",;=, q=1", "en-US"),
    ],
)
def test_accept_language_is_negotiated_against_the_catalogs(header: str | None, locale: str) -> None:
    assert i18n.negotiate(header) == locale
    assert i18n.for_accept_language(header).locale == locale


# ---------------------------------------------------------------------------------------- commands


@pytest.fixture
async def synced(wired_bot: WiredBot) -> list[dict[str, Any]]:
    """What the bot syncs (checked here first, so that a refused sync names its reasons)."""
    tree = wired_bot.bot.tree
    assert tree.translator is not None
    payload = [await command.get_translated_payload(tree, tree.translator) for command in tree.get_commands()]
    assert [problem for command in payload for problem in command_problems(command)] == []
    commands = wired_bot.discord.commands.get(None) or []
    assert commands, "the bot synced no global commands"
    return commands


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for option in node.get("options") or []:
        yield from walk(option)


def test_synced_commands_carry_every_language(synced: list[dict[str, Any]]) -> None:
    """Every name, description and choice is synced in each language, and Discord (the fake checks
    like Discord) took them: names valid and lowercase, unique per command, descriptions ≤ 100."""
    for command in synced:
        assert command_problems(command) == []
        for node in walk(command):
            context = i18n.OPTION if node.get("type", 1) > 2 else i18n.COMMAND  # options vs (sub)commands
            for locale, _ in CATALOGS:
                t = i18n.for_locale(locale)
                assert locale in (node.get("description_localizations") or {}), (node["name"], locale)
                shown = (node.get("name_localizations") or {}).get(locale, node["name"])
                assert shown == t.pgettext(context, node["name"]), (node["name"], locale)  # may stay as is
                for choice in node.get("choices") or []:
                    assert locale in (choice.get("name_localizations") or {}), (choice["name"], locale)


def test_the_fake_refuses_what_discord_refuses() -> None:
    bad = {
        "name": "link",
        "description": "x",
        "name_localizations": {"de": "Verknüpfung"},  # uppercase
        "options": [
            {"name": "a", "description": "y" * 101, "type": 3},
            {"name": "b", "description": "z", "type": 3, "name_localizations": {"de": "a"}},  # collides
        ],
    }
    problems = command_problems(bad)
    assert any("invalid name 'Verknüpfung'" in p for p in problems)
    assert any("description of 101 characters" in p for p in problems)
    assert any("option names collide (de)" in p for p in problems)


class _Shouting(app_commands.Translator):
    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: Any
    ) -> str | None:
        return string.message.upper() if locale is discord.Locale.german else None


async def test_a_change_of_translations_alone_changes_the_sync_hash(wired_bot: WiredBot) -> None:
    tree = wired_bot.bot.tree
    with_catalogs = await command_hash(tree, None)
    assert with_catalogs == await command_hash(tree, None)  # stable
    await tree.set_translator(_Shouting())
    try:
        assert await command_hash(tree, None) != with_catalogs
    finally:
        await tree.set_translator(i18n.CatalogTranslator())
    assert await command_hash(tree, None) == with_catalogs


# ------------------------------------------------------------------------------- unmarked messages

#: Keyword arguments of discord.py calls whose text users read.
USER_FACING_KEYWORDS = frozenset(
    {
        "content",
        "title",
        "description",
        "label",
        "placeholder",
        "text",
        "value",
        "group_description",
        "working",
        "cancelled",
        "expired",
        "confirm_label",
        "empty",
    }
)
#: Calls whose every keyword argument users read, and the first positional one of the send calls.
USER_FACING_CALLS = frozenset({"describe", "send_message", "send"})
#: A domain or address shown as it is ("dsc.gg"): not a message.
_NOT_WORDS = re.compile(r"[\w.:/-]+\.[a-z]{2,}[\w./-]*")
#: Marking: what may hold a literal shown to users.
MARKERS = frozenset({"_", "ngettext", "pgettext", "N_", "locale_str"})
FILES = [
    *(ROOT / "cogs").glob("*.py"),
    *(ROOT / "bot" / name for name in ("views.py", "pager.py", "embeds.py", "audit_embeds.py")),
]
#: The HTTP API: the calls that make a problem, and the first of their positional arguments that people
#: read (``detail`` too, as a keyword). Its OpenAPI descriptions are documentation, in English.
API_FILES = sorted((ROOT / "bot" / "api").glob("*.py"))
API_CALLS = {
    "Problem": 1,
    "ProblemInfo": 1,
    "FieldProblem": 2,
    "invalid_input": 2,
    "invalid_token": 0,
    "rate_limited": 1,
}


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _literals(node: ast.AST) -> Iterator[ast.AST]:
    """String literals with words in ``node``, except inside a marking call."""
    if isinstance(node, ast.Call) and _name(node.func) in MARKERS:
        return
    if isinstance(node, ast.Subscript):  # a table looked up by key: the key is no message
        yield from _literals(node.value)
        return
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if any(char.isalpha() for char in node.value) and not _NOT_WORDS.fullmatch(node.value):
            yield node
        return
    if isinstance(node, ast.JoinedStr):
        text = "".join(
            v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
        )
        if any(char.isalpha() for char in text):
            yield node
            return
    for child in ast.iter_child_nodes(node):
        yield from _literals(child)


def unmarked(source: str, filename: str = "<code>", *, api: bool = False) -> list[str]:
    """Literal user-facing texts passed to discord.py (``api``: to the HTTP API's problems) without
    being marked for translation."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        arguments: list[ast.AST] = []
        if api:
            name = _name(node.func) if isinstance(node, ast.Call) else None
            if isinstance(node, ast.Call) and name in API_CALLS:
                arguments.extend(node.args[API_CALLS[name] :])
                arguments.extend(k.value for k in node.keywords if k.arg == "detail")
        elif isinstance(node, ast.Call):
            name = _name(node.func)
            if name in MARKERS:
                continue
            if name == "Choice":  # its value is for the bot, its name for people
                arguments.extend(k.value for k in node.keywords if k.arg == "name")
            elif name in USER_FACING_CALLS:
                arguments.extend(node.args[:1] if name in ("send_message", "send") else [])
                arguments.extend(k.value for k in node.keywords if k.arg is not None)
            else:
                arguments.extend(k.value for k in node.keywords if k.arg in USER_FACING_KEYWORDS)
                if name == "add_field":
                    arguments.extend(k.value for k in node.keywords if k.arg == "name")
        elif isinstance(node, ast.ClassDef):
            arguments.extend(k.value for k in node.keywords if k.arg in USER_FACING_KEYWORDS)
        for argument in arguments:
            found.extend(
                (getattr(literal, "lineno", 0), ast.unparse(literal)) for literal in _literals(argument)
            )
    return [f"{filename}:{line}: {text}" for line, text in sorted(found)]


def test_the_cogs_and_views_mark_every_message() -> None:
    problems = [
        problem for path in FILES for problem in unmarked(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert not problems, "mark these for translation (t._, N_, locale_str):\n" + "\n".join(problems)


def test_the_api_marks_every_problem_detail() -> None:
    assert API_FILES
    problems = [
        problem
        for path in API_FILES
        for problem in unmarked(path.read_text(), str(path.relative_to(ROOT)), api=True)
    ]
    assert not problems, "mark these for translation (N_, t._):\n" + "\n".join(problems)


def test_the_api_check_finds_unmarked_details() -> None:
    code = """
raise Problem("not-found", "There is no such server.")
raise Problem("not-found", N_("There is no such server."))
raise Problem("method-not-allowed", f"{method} is not allowed here.")
raise invalid_input("query", "cursor", "it is not a cursor")
raise invalid_input("query", "cursor", N_("it is not a cursor"))
raise invalid_token(detail="Log in again.")
INFO = ProblemInfo(404, "Not found", N_("Nothing at this address."))
fine = Field(description="documentation, not a problem")
"""
    found = [line.split(": ", 1)[1] for line in unmarked(code, api=True)]
    assert found == [
        "'There is no such server.'",
        "f'{method} is not allowed here.'",
        "'it is not a cursor'",
        "'Log in again.'",
        "'Not found'",
    ], found


def test_the_marking_check_finds_unmarked_text() -> None:
    code = """
@app_commands.command(name="x", description="Plain")
@app_commands.describe(slug="The slug")
async def x(interaction):
    t = for_user(interaction)
    await interaction.edit_original_response(content=f"Deleted **{label}**.")
    await interaction.response.send_message("Nope", ephemeral=True)
    embed.add_field(name="Token", value=t._("Fine"))
    embed.add_field(name="dsc.gg", value=CHECK["key"])
    view = ConfirmView(working=t._("Deleting…"), cancelled="Cancelled.")
    ok = discord.ui.Button(label=N_("Delete"))
    fine = interaction.edit_original_response(content=text, embed=embed)
    fine = Choice(name=locale_str("Server invite"), value="server")
class M(discord.ui.Modal, title="API token"): ...
"""
    found = [line.split(": ", 1)[1] for line in unmarked(code)]
    assert found == [
        "'Plain'",
        "'The slug'",
        "f'Deleted **{label}**.'",
        "'Nope'",
        "'Token'",
        "'Cancelled.'",
        "'API token'",
    ], found


# ------------------------------------------------------------------------------- dashboard templates

TEMPLATES = ROOT / "bot" / "dashboard" / "templates"
#: Text people read in an attribute.
_READ_ATTRIBUTES = re.compile(
    r'\b(?:title|alt|placeholder|aria-label|data-label|data-copied|data-copied-status|data-copy-fallback)="([^"]*)"'
)
_TAG = re.compile(r"<[^>]*>")
#: Code shown as it is (a header, a curl command, an address): not a message.
_CODE = re.compile(r"<code[^>]*>.*?</code>", re.S)
_WORD = re.compile(r"[^\W\d_]{2,}")
#: Addresses, domains and the product's name: shown as they are.
_URL = re.compile(r"\b\w+://\S*|[\w.-]+\.[a-z]{2,}(?:/\S*)?|\bdscgg-bot\b")
#: Macros whose label and hint people read.
_LABELLED = {"field": 1, "textarea": 1, "checkbox": 1}
_GETTEXT = frozenset({"_", "gettext", "ngettext", "pgettext"})
#: Calls whose strings are no sentences: ``command("link create")`` shows the command in the reader's
#: language from the catalog's command names.
_NOT_MESSAGES = frozenset({"command"})
_DYNAMIC = "\x00"


def _blank(pattern: re.Pattern[str], text: str) -> str:
    """``text`` without ``pattern``'s matches, keeping the markers of what was filled in them."""
    return pattern.sub(lambda match: _DYNAMIC * match.group().count(_DYNAMIC) or " ", text)


def _words(text: str) -> list[str]:
    return _WORD.findall(_URL.sub(" ", _TAG.sub(" ", _CODE.sub(" ", text))))


def unmarked_in_template(source: str, name: str = "<template>") -> list[str]:
    """Text of a Jinja2 template that people read but that is not inside ``_()`` / ``ngettext()``:
    words between tags, in read attributes (title, aria-label, placeholder…), in string constants
    with words, and the labels and hints given to the form macros as plain strings."""
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    tree = env.parse(source)
    found: list[tuple[int, str]] = []
    # The template's own text in order, with a marker wherever something is filled in.
    datas = list(tree.find_all(nodes.TemplateData))
    text = _DYNAMIC.join(node.data for node in datas)
    for match in _READ_ATTRIBUTES.finditer(text):
        if _words(match.group(1).replace(_DYNAMIC, " ")):
            node = datas[text.count(_DYNAMIC, 0, match.start())]
            found.append((node.lineno, f'attribute "{match.group(1)}"'))
    chunks = _blank(_TAG, _blank(_CODE, _blank(_READ_ATTRIBUTES, text))).split(_DYNAMIC)
    for node, chunk in zip(datas, chunks, strict=True):
        if _words(chunk):
            found.append((node.lineno, f"text {chunk.strip()!r}"))
    marked: set[int] = set()
    for call in tree.find_all(nodes.Call):
        callee = call.node.name if isinstance(call.node, nodes.Name) else None
        if callee in _GETTEXT or callee in _NOT_MESSAGES:
            marked.update(id(arg) for arg in call.args if isinstance(arg, nodes.Const))
        elif callee in _LABELLED:
            index = _LABELLED[callee]
            read = call.args[index : index + 1] + [kw.value for kw in call.kwargs if kw.key == "hint"]
            found.extend(
                (arg.lineno, f"{callee}() label {arg.value!r}")
                for arg in read
                if isinstance(arg, nodes.Const) and isinstance(arg.value, str) and _words(arg.value)
            )
    for const in tree.find_all(nodes.Const):
        if id(const) in marked or not isinstance(const.value, str):
            continue
        if " " in const.value.strip() and len(_words(const.value)) >= 2:
            found.append((const.lineno, f"string {const.value!r}"))
    return [f"{name}:{line}: {what}" for line, what in sorted(set(found))]


def test_the_dashboard_templates_mark_every_message() -> None:
    problems = [
        problem
        for path in sorted(TEMPLATES.glob("*.html"))
        for problem in unmarked_in_template(path.read_text(), path.name)
    ]
    assert not problems, "wrap these in _() and run make i18n-extract:\n" + "\n".join(problems)


def test_the_template_check_finds_unmarked_text() -> None:
    template = """
<h2>{{ _("Links") }}</h2>
<p class="muted">Links of {{ server.name }}</p>
<a href="{{ base }}/servers/{{ server.id }}/links" title="Open it">{{ _("Open") }}</a>
<nav aria-label="{{ _("Pages") }}"><code>curl -H "Authorization: Bearer …" {{ url }}</code></nav>
<span>dsc.gg/{{ slug }}</span> <span>https://{{ domain }}/{{ slug }}</span>
{{ field("name", "Name", hint=_("Say where it is used.")) }}
{{ field("title", _("Title"), hint="Shown on the preview.") }}
{{ {"server": "Server invite", "bot": _("Bot invite")}[kind] }}
{{ _("Created %(link)s.", link=link) }} {{ "asc" if up else "desc" }}
"""
    found = [line.split(": ", 1)[1] for line in unmarked_in_template(template)]
    assert sorted(found) == sorted(
        [
            "text 'Links of'",
            'attribute "Open it"',
            "field() label 'Name'",
            "field() label 'Shown on the preview.'",
            "string 'Shown on the preview.'",
            "string 'Server invite'",
        ]
    ), found
