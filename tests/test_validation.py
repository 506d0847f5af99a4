"""Local validation: what admins type is normalized or refused before anything reaches dsc.gg."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bot.dscgg.models import LinkType
from bot.errors import InvalidInput, NothingToChange, describe
from bot.validation import (
    DESCRIPTION_MAX,
    REMOVABLE,
    SLUG_MAX,
    TITLE_MAX,
    LinkChanges,
    MetaOptions,
    NewLink,
    link_change_options,
    new_link_options,
    normalize_slug,
    parse_color,
    validate_description,
    validate_image,
    validate_password,
    validate_query,
    validate_redirect,
    validate_title,
)


@contextmanager
def refused(pattern: str) -> Iterator[pytest.ExceptionInfo[InvalidInput]]:
    """The block raises InvalidInput whose sentence (as the admin reads it, in English) matches."""
    with pytest.raises(InvalidInput) as info:
        yield info
    assert re.search(pattern, describe(info.value)), describe(info.value)


# --------------------------------------------------------------------------------------------- slug


@pytest.mark.parametrize(
    "raw",
    [
        "x",
        "dsc.gg/x",
        "https://dsc.gg/x",
        "http://dsc.gg/x",
        "HTTP://DSC.GG/x",
        "HtTpS://Dsc.Gg/x",
        "https://www.dsc.gg/x",
        "www.dsc.gg/x",
        "<https://dsc.gg/x>",
        "<x>",
        "dsc.gg/x/",
        "https://dsc.gg/x/",
        "dsc.gg/x?ref=homepage",
        "https://dsc.gg/x?ref=homepage&a=b",
        "dsc.gg/x#frag",
        "https://dsc.gg/x/?q=1#frag",
        "  x  ",
        "\t https://dsc.gg/x \n",
        " <dsc.gg/x> ",
    ],
)
def test_slug_forms_reduce_to_the_name(raw: str) -> None:
    assert normalize_slug(raw) == "x"


def test_slug_keeps_case_digits_dash_underscore() -> None:
    assert normalize_slug("My-Server_2") == "My-Server_2"
    assert normalize_slug("https://dsc.gg/My-Server_2") == "My-Server_2"


@pytest.mark.parametrize(
    "raw",
    [
        "https://example.com/x",
        "example.com/x",
        "https://discord.gg/x",
        "https://dsc.gg.evil.com/x",
        "https://evil.com/dsc.gg/x",
    ],
)
def test_slug_on_another_domain_is_refused_naming_the_domain(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        normalize_slug(raw)
    assert info.value.field == "slug"
    assert "not on dsc.gg" in describe(info.value)


def test_slug_with_port_or_user_is_refused() -> None:
    for raw in ("https://dsc.gg:8443/x", "https://me@dsc.gg/x"):
        with refused(r"plain dsc\.gg link"):
            normalize_slug(raw)


def test_slug_other_scheme_is_refused() -> None:
    with refused(r"dsc\.gg link"):
        normalize_slug("ftp://dsc.gg/x")


@pytest.mark.parametrize(
    "raw", ["dsc.gg", "dsc.gg/", "https://dsc.gg", "https://dsc.gg/", "<https://www.dsc.gg/>"]
)
def test_dscgg_without_a_name_is_refused(raw: str) -> None:
    with refused(r"no name after dsc\.gg/"):
        normalize_slug(raw)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a/b", '"/"'),
        ("dsc.gg/a/b", '"/"'),
        ("a?b", '"?"'),
        ("a#b", '"#"'),
        ("..", '"."'),
        ("../user/1/links", '"."'),
        ("%2F", '"%"'),
        ("%72%6f%77", '"%"'),
        ("https://dsc.gg/%72%6f%77", '"%"'),
        ("a b", "a space"),
        ("party🎉", '"🎉"'),
        ("a\u200db", "U+200D"),
        ("a\u200bb", "U+200B"),
        ("a\u202eb", "U+202E"),
        ("pаypal", '"а"'),  # Cyrillic a
        ("ｘ", '"ｘ"'),  # fullwidth x
        ("a.b", '"."'),
        ("é", '"é"'),
        ("١٢٣", '"١"'),  # Arabic-Indic digits are digits, but not ASCII
    ],
)
def test_slug_odd_characters_are_refused_and_shown(raw: str, shown: str) -> None:
    with pytest.raises(InvalidInput) as info:
        normalize_slug(raw)
    assert info.value.field == "slug"
    assert shown in describe(info.value)
    assert "A-Z" in describe(info.value)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("https://dsc.gg/a\tb", "U+0009"),
        ("https://dsc.gg/a\rb", "U+000D"),
        ("https://dsc.gg/a\nb", "U+000A"),
        ("dsc.gg/a\tb", "U+0009"),
        ("https://ds\tc.gg/x", "U+0009"),
        ("https://dsc.gg\n/x", "U+000A"),
        ("https://dsc.gg/x\x00", "U+0000"),
    ],
)
def test_slug_links_with_tabs_or_line_breaks_inside_are_refused(raw: str, shown: str) -> None:
    """URL parsing quietly drops TAB/CR/LF: "dsc.gg/a<TAB>b" must not turn into the link "ab"."""
    with pytest.raises(InvalidInput) as info:
        normalize_slug(raw)
    assert info.value.field == "slug"
    assert shown in describe(info.value)


def test_slug_newlines() -> None:
    assert normalize_slug("name\n") == "name"  # surrounding whitespace, stripped (no `$` trap)
    with pytest.raises(InvalidInput):
        normalize_slug("a\nb")


@pytest.mark.parametrize("raw", ["", "   ", "<>", "< >"])
def test_empty_slug_is_refused(raw: str) -> None:
    with refused("empty"):
        normalize_slug(raw)


def test_slug_length_edges() -> None:
    assert normalize_slug("a") == "a"
    assert normalize_slug("a" * SLUG_MAX) == "a" * SLUG_MAX
    assert SLUG_MAX == 120
    for n, shown in ((121, "121"), (1000, "1,000")):
        with refused(f"{shown} characters"):
            normalize_slug("a" * n)
    with refused("121 characters"):
        normalize_slug("https://dsc.gg/" + "a" * 121)


def test_slug_refusal_reads_as_a_sentence() -> None:
    with pytest.raises(InvalidInput) as info:
        normalize_slug("a b")
    text = describe(info.value)
    assert text.startswith("Check the `slug` option: it contains a space")
    assert "InvalidInput" not in text


# ----------------------------------------------------------------------------------------- redirect


@pytest.mark.parametrize(
    ("raw", "url", "kind"),
    [
        ("https://discord.gg/abc", "https://discord.gg/abc", "server"),
        ("discord.gg/abc", "https://discord.gg/abc", "server"),
        ("http://discord.gg/abc", "https://discord.gg/abc", "server"),
        ("HTTPS://DISCORD.GG/AbC", "https://discord.gg/AbC", "server"),
        ("<https://discord.gg/abc>", "https://discord.gg/abc", "server"),
        ("  discord.gg/abc/  ", "https://discord.gg/abc/", "server"),
        ("https://discord.com/invite/abc", "https://discord.com/invite/abc", "server"),
        ("discordapp.com/invite/abc", "https://discordapp.com/invite/abc", "server"),
        ("https://www.discord.com/invite/abc", "https://www.discord.com/invite/abc", "server"),
        ("https://canary.discord.com/invite/abc", "https://canary.discord.com/invite/abc", "server"),
        ("https://ptb.discord.com/invite/abc", "https://ptb.discord.com/invite/abc", "server"),
        ("https://discord.gg/my-vanity", "https://discord.gg/my-vanity", "server"),
        ("https://discord.gg/abc?event=123", "https://discord.gg/abc?event=123", "server"),
        ("https://discord.new/AbCdEf", "https://discord.new/AbCdEf", "template"),
        ("discord.new/AbCdEf", "https://discord.new/AbCdEf", "template"),
        ("https://discord.com/template/AbCdEf", "https://discord.com/template/AbCdEf", "template"),
        ("https://discordapp.com/template/AbCdEf", "https://discordapp.com/template/AbCdEf", "template"),
        (
            "https://discord.com/oauth2/authorize?client_id=123456789012345678",
            "https://discord.com/oauth2/authorize?client_id=123456789012345678",
            "bot",
        ),
        (
            "https://discord.com/api/oauth2/authorize?client_id=123456789012345678&permissions=8&scope=bot",
            "https://discord.com/api/oauth2/authorize?client_id=123456789012345678&permissions=8&scope=bot",
            "bot",
        ),
        (
            "discordapp.com/oauth2/authorize?scope=bot%20applications.commands&permissions=2147483648"
            "&client_id=123456789012345678&integration_type=0",
            "https://discordapp.com/oauth2/authorize?scope=bot%20applications.commands&permissions=2147483648"
            "&client_id=123456789012345678&integration_type=0",
            "bot",
        ),
    ],
)
def test_redirect_is_normalized_and_its_type_inferred(raw: str, url: str, kind: str) -> None:
    assert validate_redirect(raw, None) == (url, LinkType(kind))


def test_explicit_type_that_agrees_is_kept() -> None:
    assert validate_redirect("discord.gg/abc", LinkType("server")) == (
        "https://discord.gg/abc",
        LinkType("server"),
    )
    assert validate_redirect("discord.new/abc", "template")[1] == LinkType("template")


@pytest.mark.parametrize(
    ("raw", "given", "said"),
    [
        ("https://discord.gg/abc", "bot", "it is “Bot invite” but the redirect is a server invite"),
        ("https://discord.new/abc", "server", "it is “Server invite” but the redirect is a server template"),
        (
            "https://discord.com/oauth2/authorize?client_id=123456789012345678",
            "template",
            "it is “Server template” but the redirect is a bot invite",
        ),
    ],
)
def test_explicit_type_that_contradicts_the_redirect_is_refused(raw: str, given: str, said: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_redirect(raw, LinkType(given))
    assert info.value.field == "type"
    assert said in describe(info.value)


@pytest.mark.parametrize(
    "raw",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "ftp://discord.gg/abc",
        "mailto:someone@example.com",
        "vbscript:msgbox(1)",
    ],
)
def test_other_schemes_are_refused(raw: str) -> None:
    with refused(r"only https:// links are accepted") as info:
        validate_redirect(raw, None)
    assert info.value.field == "redirect"


@pytest.mark.parametrize(
    "raw",
    [
        "https://example.com",
        "https://example.com/invite/abc",
        "https://discord.gg",
        "https://discord.gg/",
        "https://discord.gg/abc/def",
        "https://discord.gg@evil.com/abc",
        "https://discord.gg:443/abc",
        "https://discord.gg.evil.com/abc",
        "https://xn--discrd-xxa.gg/abc",
        "https://discord.com/channels/1/2",
        "https://discord.com/invite/",
        "https://dsc.gg/other",
        "//discord.gg/abc",
    ],
)
def test_redirects_of_no_known_kind_are_refused_listing_what_is_accepted(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_redirect(raw, None)
    assert info.value.field == "redirect"
    assert "discord.gg/CODE" in describe(info.value)
    assert "discord.com/oauth2/authorize" in describe(info.value)
    assert "discord.new/CODE" in describe(info.value)


@pytest.mark.parametrize(
    "raw",
    [
        "https://discord.com/oauth2/authorize",
        "https://discord.com/oauth2/authorize?client_id=abc",
        "https://discord.com/oauth2/authorize?client_id=1&client_id=2",
    ],
)
def test_bot_invite_needs_a_client_id(raw: str) -> None:
    with refused("client_id"):
        validate_redirect(raw, None)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("https://discörd.gg/abc", '"ö"'),
        ("https://discord.gg/ab c", "a space"),
        ("https://discord.gg/abc\u200b", "U+200B"),
    ],
)
def test_redirect_with_unicode_or_spaces_is_refused(raw: str, shown: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_redirect(raw, None)
    assert shown in describe(info.value)


def test_redirect_length_cap() -> None:
    base = "https://discord.com/oauth2/authorize?client_id=123456789012345678&state="
    ok = base + "a" * (2000 - len(base))
    assert validate_redirect(ok, None)[0] == ok
    with refused("2,001 characters"):
        validate_redirect(ok + "a", None)


def test_redirect_length_cap_counts_the_https_prefix_added() -> None:
    tail = "discord.com/oauth2/authorize?client_id=123456789012345678&state="
    typed = tail + "a" * (2000 - len(tail))  # 2000 characters as typed
    with refused("2,008 characters") as info:
        validate_redirect(typed, None)  # https:// makes it 2008
    assert info.value.field == "redirect"
    ok = tail + "a" * (2000 - len("https://") - len(tail))
    assert len(validate_redirect(ok, None)[0]) == 2000
    with refused("2,001 characters"):
        validate_redirect("http://" + ok + "a", None)  # 2000 typed, 2001 once upgraded to https


@pytest.mark.parametrize(
    "raw",
    [
        "https://discord.com/oauth2/authorize?client_id=123456789012345678&scope=bot",
        "https://discord.com/oauth2/authorize?client_id=123456789012345678&scope=applications.commands",
        "https://discord.com/oauth2/authorize?client_id=123456789012345678&permissions=8"
        "&scope=bot%20applications.commands",
        "https://discord.com/oauth2/authorize?client_id=123456789012345678&scope=bot+identify",
        "https://discord.com/oauth2/authorize?client_id=123456789012345678&permissions=0",
        "https://discord.com/oauth2/authorize?client_id=123456789012345678",
    ],
)
def test_bot_invites_with_a_bot_scope_or_none_are_accepted(raw: str) -> None:
    assert validate_redirect(raw, None)[1] is LinkType.BOT


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (
            "https://discord.com/oauth2/authorize?client_id=123456789012345678"
            "&redirect_uri=https://evil.com&response_type=code&scope=identify%20email",
            "redirect_uri",
        ),
        (
            "https://discord.com/oauth2/authorize?client_id=123456789012345678&response_type=token&scope=bot",
            "response_type",
        ),
        (
            "https://discord.com/oauth2/authorize?client_id=123456789012345678&scope=bot"
            "&redirect_uri=https%3A%2F%2Fevil.com",
            "redirect_uri",
        ),
        ("https://discord.com/oauth2/authorize?client_id=123456789012345678&scope=identify%20email", "scope"),
        ("https://discord.com/oauth2/authorize?client_id=123456789012345678&scope=guilds.join", "scope"),
    ],
)
def test_sign_in_links_are_not_bot_invites(raw: str, said: str) -> None:
    """A consent link for someone's account (identify, email, guilds.join, a redirect to another
    site) must not pass for a bot invite."""
    with pytest.raises(InvalidInput) as info:
        validate_redirect(raw, None)
    assert info.value.field == "redirect"
    assert f"`{said}`" in describe(info.value)
    with pytest.raises(InvalidInput):
        validate_redirect(raw, LinkType.BOT)


def test_empty_redirect_is_refused() -> None:
    with refused("empty"):
        validate_redirect("   ", None)


# -------------------------------------------------------------------------------------------- color


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("#5865F2", "#5865f2"),
        ("5865F2", "#5865f2"),
        ("#5865f2", "#5865f2"),
        (" #abcdef ", "#abcdef"),
        ("#FFF", "#ffffff"),
        ("fff", "#ffffff"),
        ("#a1B", "#aa11bb"),
        ("000000", "#000000"),
    ],
)
def test_color_forms(raw: str, expected: str) -> None:
    assert parse_color(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "#", "red", "#12345", "#1234567", "##fff", "#GGGGGG", "0x5865F2", "#ffff", "１２３"]
)
def test_bad_colors_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_color(raw)
    assert info.value.field == "color"
    assert "#5865F2" in describe(info.value)


# ------------------------------------------------------------------------------------ meta and query


def test_title_and_description_limits() -> None:
    assert validate_title("  Hello  ") == "Hello"
    assert validate_title("t" * TITLE_MAX) == "t" * TITLE_MAX
    with refused("257 characters") as info:
        validate_title("t" * (TITLE_MAX + 1))
    assert info.value.field == "title"
    assert validate_description("line 1\nline 2") == "line 1\nline 2"
    with pytest.raises(InvalidInput) as info:
        validate_description("d" * (DESCRIPTION_MAX + 1))
    assert info.value.field == "description"
    with refused("U\\+0007"):
        validate_title("bell\x07")
    with refused("empty"):
        validate_description("   ")


@pytest.mark.parametrize(
    "char",
    [*"\u202a\u202b\u202c\u202d\u202e", *"\u2066\u2067\u2068\u2069", *"\u200b\u200c\u200d\ufeff"],
)
def test_title_and_description_refuse_invisible_reordering_characters(char: str) -> None:
    """Bidi overrides/isolates and zero-width characters can make a preview read differently from
    what was typed ("moc.evil" shown as "live.com")."""
    for check, field in ((validate_title, "title"), (validate_description, "description")):
        with pytest.raises(InvalidInput) as info:
            check(f"Join {char}us")
        assert info.value.field == field
        assert f"U+{ord(char):04X}" in describe(info.value)
    assert validate_title("Café ☕ – 日本語 👋🏽") == "Café ☕ – 日本語 👋🏽"  # ordinary text still passes


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("https://i.imgur.com/x.png", True),
        ("<https://cdn.example.org/a.gif?x=1>", True),
        ("http://i.imgur.com/x.png", False),
        ("i.imgur.com/x.png", False),
        ("javascript:alert(1)", False),
        ("https://localhost/x.png", False),
        ("https://user@i.imgur.com/x.png", False),
        ("https://i.imgur.com/a b.png", False),
        ("https://i.imgur.com/" + "a" * 2000, False),
    ],
)
def test_image_must_be_an_https_url(raw: str, ok: bool) -> None:
    if ok:
        assert validate_image(raw).startswith("https://")
    else:
        with pytest.raises(InvalidInput) as info:
            validate_image(raw)
        assert info.value.field == "image"


def test_password_is_kept_exactly() -> None:
    assert validate_password(" s3cret ") == " s3cret "
    with refused("remove_password"):
        validate_password("  ")
    with pytest.raises(InvalidInput):
        validate_password("p" * 101)


@pytest.mark.parametrize("raw", ["a b&c#x", "+", "%", '"', "日本語", "x"])
def test_search_queries_are_kept_for_encoding_by_the_client(raw: str) -> None:
    assert validate_query(raw) == raw


def test_search_query_refusals() -> None:
    for raw in ("", "   "):
        with refused("empty"):
            validate_query(raw)
    with refused("500 characters"):
        validate_query("q" * 500)


# ------------------------------------------------------------------------- a link's options, together

INVITE = "https://discord.gg/abc"


def test_a_new_link_is_every_option_normalized() -> None:
    new = new_link_options(
        slug=" <https://www.dsc.gg/Mine/?ref=x> ",
        redirect="discord.gg/abc",
        title="  Hello  ",
        description=" two\nlines ",
        image="<https://i.imgur.com/x.png>",
        color="58F",
        unlisted=False,
        password=" s3cret ",
    )
    assert new == NewLink(
        slug="Mine",
        redirect=INVITE,
        type=LinkType.SERVER,
        meta=MetaOptions(
            title="Hello",
            description="two\nlines",
            image="https://i.imgur.com/x.png",
            color="#5588ff",
            password=" s3cret ",
        ),
        unlisted=False,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        new.slug = "other"  # type: ignore[misc]


def test_a_new_link_keeps_a_type_that_agrees_and_leaves_the_rest_out() -> None:
    bot_invite = "https://discord.com/oauth2/authorize?client_id=123456789012345678&scope=bot"
    assert new_link_options(slug="b", redirect=bot_invite, type="bot") == NewLink(
        "b", bot_invite, LinkType.BOT
    )


@pytest.mark.parametrize(
    ("options", "field", "said"),
    [
        ({"slug": "two words"}, "slug", "a space"),
        ({"slug": "https://example.com/x"}, "slug", "example.com"),
        ({"redirect": "https://example.com"}, "redirect", "not a Discord invite"),
        ({"redirect": "   "}, "redirect", "it is empty"),
        ({"type": "bot"}, "type", "the redirect is a server invite"),
        ({"type": "link"}, "type", "it must be"),
        ({"title": "   "}, "title", "it is empty"),
        ({"title": "bell\x07"}, "title", "U\\+0007"),
        ({"description": "a\u202eb"}, "description", "U\\+202E"),
        ({"image": "http://i.imgur.com/x.png"}, "image", "https://"),
        ({"color": "red"}, "color", "hex colour"),
        ({"password": "   "}, "password", "remove_password"),
        # The first option in the command's order is the one refused.
        ({"slug": "a b", "redirect": "nope", "color": "red"}, "slug", "a space"),
        ({"redirect": "nope", "color": "red"}, "redirect", "not a Discord invite"),
        ({"title": "", "color": "red"}, "title", "it is empty"),
    ],
)
def test_a_new_link_refuses_each_bad_option(options: dict[str, Any], field: str, said: str) -> None:
    with refused(f"Check the `{field}` option: .*{said}") as info:
        new_link_options(**{"slug": "x", "redirect": INVITE, **options})
    assert info.value.field == field


def test_changes_are_every_given_option_normalized() -> None:
    changes = link_change_options(
        slug="dsc.gg/x",
        redirect="https://discord.com/template/abc",
        type="template",
        title=" T ",
        color="#ABC",
        unlisted=False,
        password="pw",
        removed={"image", "description"},
    )
    assert changes == LinkChanges(
        slug="x",
        redirect="https://discord.com/template/abc",
        redirect_type=LinkType.TEMPLATE,
        type=LinkType.TEMPLATE,
        meta=MetaOptions(title="T", color="#aabbcc", password="pw"),
        unlisted=False,
        removed=("description", "image"),  # in option order
    )


def test_a_new_redirect_brings_its_type_and_a_type_alone_is_kept_for_the_service() -> None:
    moved = link_change_options(slug="x", redirect="discord.new/abc")
    assert (moved.redirect, moved.redirect_type, moved.type) == (
        "https://discord.new/abc",
        LinkType.TEMPLATE,
        None,
    )
    retyped = link_change_options(slug="x", type="bot")
    assert (retyped.redirect, retyped.redirect_type, retyped.type) == (None, None, LinkType.BOT)
    with refused("Check the `type` option: it must be"):
        link_change_options(slug="x", type="link")


@pytest.mark.parametrize("given", [{"unlisted": False}, {"removed": {"password"}}, {"title": "t"}])
def test_one_change_is_enough(given: dict[str, Any]) -> None:
    assert link_change_options(slug="x", **given).slug == "x"


@pytest.mark.parametrize("given", [{}, {"removed": ()}, {"removed": set()}])
def test_nothing_to_change_is_refused_naming_the_link(given: dict[str, Any]) -> None:
    with pytest.raises(NothingToChange) as info:
        link_change_options(slug="https://dsc.gg/x", **given)
    assert info.value.slug == "x"
    assert "Nothing to change on **dsc.gg/x**" in describe(info.value)


@pytest.mark.parametrize("field", REMOVABLE)
def test_removing_a_field_and_giving_a_value_for_it_is_refused(field: str) -> None:
    value: dict[str, Any] = {field: {"image": "https://x.io/a.png", "color": "#abc"}.get(field, "new")}
    with refused(f"Check the `remove_{field}` option: it can't be used together with `{field}`") as info:
        link_change_options(slug="x", removed={field}, **value)
    assert info.value.field == f"remove_{field}"


def test_the_conflict_is_said_before_a_bad_value() -> None:
    with refused("`remove_color`"):
        link_change_options(slug="x", color="red", removed={"color"})


@pytest.mark.parametrize("field", ["redirect", "type", "unlisted"])
def test_a_field_every_link_has_cannot_be_removed(field: str) -> None:
    with refused(
        f"Check the `{field}` option: it can't be removed; leave it out to keep it as it is"
    ) as info:
        link_change_options(slug="x", title="t", removed={field})
    assert info.value.field == field


def test_a_removal_of_no_field_is_a_bug_not_a_refusal() -> None:
    with pytest.raises(ValueError, match="remove_title"):
        link_change_options(slug="x", removed={"remove_title"})


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"slug": "a b", "title": "t"}, "slug"),
        ({"redirect": "https://example.com"}, "redirect"),
        ({"redirect": ""}, "redirect"),
        ({"redirect": INVITE, "type": "bot"}, "type"),
        ({"title": "bell\x07"}, "title"),
        ({"image": "ftp://x.io/a.png"}, "image"),
        ({"color": "#12"}, "color"),
        ({"password": ""}, "password"),
    ],
)
def test_changes_refuse_each_bad_value(options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        link_change_options(**{"slug": "x", **options})
    assert info.value.field == field
