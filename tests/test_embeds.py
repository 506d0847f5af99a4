"""Embeds stay inside Discord's limits and show link data inertly, whatever dsc.gg sends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import discord
import pytest

from bot.db.links import LinkRecord
from bot.dscgg.models import Link
from bot.embeds import (
    PAGE_SIZE,
    escape,
    link_info_embed,
    link_page_embed,
    page_count,
    record_page_embed,
    truncate,
)

CREATED_MS = 1_700_000_000_000
BUMPED_MS = 1_700_086_400_000


def make_link(**overrides: Any) -> Link:
    payload: dict[str, Any] = {
        "id": "my-server",
        "owner": "123456789012345678",
        "redirect": "https://discord.gg/abc",
        "domain": "dsc.gg",
        "type": "server",
        "created_at": CREATED_MS,
        "bumped_at": BUMPED_MS,
        "unlisted": False,
        "disabled": False,
        "meta": {"title": "My server", "description": "A nice place", "color": "#5865F2", "image": None},
    }
    meta = overrides.pop("meta", None)
    payload.update(overrides)
    if meta is not None:
        payload["meta"] = {**payload["meta"], **meta}
    return Link.model_validate(payload)


def assert_within_limits(embed: discord.Embed) -> None:
    assert len(embed.title or "") <= 256
    assert len(embed.description or "") <= 4096
    assert len(embed.fields) <= 25
    for field in embed.fields:
        assert field.name
        assert len(field.name) <= 256
        assert field.value
        assert len(field.value) <= 1024
    assert len(embed.footer.text or "") <= 2048
    assert len(embed) <= 6000
    # Discord validates the same thing on send; the dict must serialize.
    assert embed.to_dict()


def field(embed: discord.Embed, name: str) -> str:
    for f in embed.fields:
        if f.name == name:
            assert f.value is not None
            return f.value
    raise AssertionError(f"no field {name!r} in {[f.name for f in embed.fields]}")


def names(embed: discord.Embed) -> list[str]:
    return [f.name or "" for f in embed.fields]


# ------------------------------------------------------------------------------------------ helpers


def test_truncate_marks_the_cut_and_respects_the_limit() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("abcd", 3) == "ab…"
    assert len(truncate("x" * 5000, 1024)) == 1024
    # An escape backslash is never left dangling in front of the ellipsis.
    assert truncate("ab\\*cd", 4) == "ab…"


def test_escape_neutralizes_markdown_and_mentions() -> None:
    text = escape("@everyone **bold** <@&123456789012345678> [click](https://evil.example) `code`")
    assert "@everyone" not in text
    assert "<@&123456789012345678>" not in text
    assert "\\*\\*bold\\*\\*" in text
    assert "\\[click](https://evil.example)" in text
    assert "\\`code\\`" in text


# ---------------------------------------------------------------------------------------- link info


def test_info_shows_everything_an_admin_needs() -> None:
    embed = link_info_embed(make_link(unlisted=True, stats={"clicks": 1234, "unique_clicks": 56}))
    assert embed.title == "dsc.gg/my-server"
    assert embed.url == "https://dsc.gg/my-server"
    assert field(embed, "Redirect") == "https://discord.gg/abc"
    assert field(embed, "Type") == "Server invite"
    assert field(embed, "Owner") == "<@123456789012345678>"
    assert field(embed, "Visibility") == "Unlisted"
    assert field(embed, "Status") == "Active"
    assert field(embed, "Created") == "<t:1700000000:f> (<t:1700000000:R>)"
    assert field(embed, "Bumped") == "<t:1700086400:f> (<t:1700086400:R>)"
    assert field(embed, "Clicks") == "1,234 (56 unique)"
    assert field(embed, "Embed title") == "My server"
    assert field(embed, "Embed description") == "A nice place"
    assert field(embed, "Embed colour") == "#5865f2"
    assert embed.colour == discord.Colour(0x5865F2)
    assert_within_limits(embed)


def test_info_uses_the_links_domain_for_the_short_url() -> None:
    embed = link_info_embed(make_link(domain="dsc.gg", id="x"))
    assert embed.url == "https://dsc.gg/x"
    embed = link_info_embed(make_link(domain="discord.link", id="x"))
    assert embed.title == "discord.link/x"
    assert embed.url == "https://discord.link/x"


def test_info_with_a_junk_domain_falls_back_to_dscgg() -> None:
    embed = link_info_embed(make_link(domain="evil domain/<script>", id="x"))
    assert embed.url == "https://dsc.gg/x"


def test_info_flags_a_disabled_listed_link_and_never_bumped() -> None:
    embed = link_info_embed(make_link(disabled=True, bumped_at=None))
    assert field(embed, "Status") == "**Disabled**"
    assert field(embed, "Visibility") == "Listed"
    assert field(embed, "Bumped") == "Never"
    assert "Clicks" not in names(embed)


def test_info_owner_is_a_mention_even_above_2_53() -> None:
    embed = link_info_embed(make_link(owner="9007199254740993123"))
    assert field(embed, "Owner") == "<@9007199254740993123>"
    assert field(link_info_embed(make_link(owner=None)), "Owner") == "Unknown"


@pytest.mark.parametrize(
    ("color", "expected"),
    [
        ("#ff0000", 0xFF0000),
        ("ff0000", 0xFF0000),
        ("#FFF", 0xFFFFFF),
        (0x00FF00, 0x00FF00),
        ("0x0000ff", 0x0000FF),
    ],
)
def test_info_colour_is_parsed_robustly(color: Any, expected: int) -> None:
    embed = link_info_embed(make_link(meta={"color": color}))
    assert embed.colour == discord.Colour(expected)


@pytest.mark.parametrize("color", [None, "", "red", "#12345", "#ggg", "rgb(1,2,3)"])
def test_info_ignores_junk_colours(color: Any) -> None:
    embed = link_info_embed(make_link(meta={"color": color}))
    assert embed.colour is not None  # the bot's own colour
    assert "Embed colour" not in names(embed)


def test_info_image_is_shown_when_it_is_https() -> None:
    embed = link_info_embed(make_link(meta={"image": "https://i.imgur.com/x.png"}))
    assert embed.image.url == "https://i.imgur.com/x.png"
    assert field(embed, "Embed image") == "https://i.imgur.com/x.png"


@pytest.mark.parametrize("image", ["javascript:alert(1)", "http://x.example/a.png", "not a url"])
def test_info_unsafe_image_is_text_only(image: str) -> None:
    embed = link_info_embed(make_link(meta={"image": image}))
    assert embed.image.url is None
    assert "Embed image" in names(embed)


def test_info_escapes_link_text() -> None:
    embed = link_info_embed(
        make_link(
            meta={
                "title": "@everyone free **nitro** <@&123456789012345678>",
                "description": "[click me](https://evil.example) `x` @here",
            }
        )
    )
    title = field(embed, "Embed title")
    description = field(embed, "Embed description")
    assert "@everyone" not in title
    assert "@\u200beveryone" in title
    assert "<@&123456789012345678>" not in title
    assert "\\*\\*nitro\\*\\*" in title
    assert description.startswith("\\[click me]")
    assert "@here" not in description


def test_info_with_oversized_data_stays_within_limits() -> None:
    link = make_link(
        id="a" * 120,
        redirect="https://discord.com/oauth2/authorize?client_id=1&x=" + "y" * 3000,
        meta={
            "title": "T" * 300,
            "description": "D" * 5000,
            "image": "https://i.imgur.com/" + "z" * 3000,
        },
        stats={"clicks": 10**12, "unique_clicks": 10**11},
    )
    embed = link_info_embed(link)
    assert_within_limits(embed)
    assert field(embed, "Redirect").endswith("…")
    assert field(embed, "Embed description").endswith("…")
    assert len(field(embed, "Embed title")) <= 1024
    assert embed.image.url is None  # too long to be a usable image URL


def test_info_with_a_minimal_payload() -> None:
    link = Link.model_validate({"id": "x"})
    embed = link_info_embed(link)
    assert embed.title == "dsc.gg/x"
    assert field(embed, "Created") == "Never"
    assert field(embed, "Redirect") == "None"
    assert_within_limits(embed)


# -------------------------------------------------------------------------------------------- pages


def test_page_count() -> None:
    assert page_count(0) == 1
    assert page_count(1) == 1
    assert page_count(PAGE_SIZE) == 1
    assert page_count(PAGE_SIZE + 1) == 2
    assert page_count(40) == 4


def test_page_of_links_has_ranks_and_page_footer() -> None:
    links = [make_link(id=f"link{i}", meta={"title": f"Title {i}"}) for i in range(40)]
    embed = link_page_embed("Top links", links[10:20], page=2, pages=4, total=40, first_rank=11)
    assert embed.title == "Top links"
    assert names(embed)[0] == "11. dsc.gg/link10"
    assert names(embed)[-1] == "20. dsc.gg/link19"
    assert "**Title 10**" in (embed.fields[0].value or "")
    assert embed.footer.text == "Page 2/4 · 40 links"
    assert_within_limits(embed)


def test_page_of_oversized_links_stays_within_limits() -> None:
    links = [
        make_link(id="s" * 120, domain="d" * 60 + ".gg", meta={"title": "T" * 300, "description": "D" * 5000})
        for _ in range(40)
    ]
    embed = link_page_embed("x" * 300, links, page=1, pages=1, total=40)
    assert_within_limits(embed)
    assert len(embed.fields) == 25


def test_a_crowded_page_gives_every_link_a_fair_share() -> None:
    """Ten links with long slugs, titles and descriptions: each keeps its type and click count and
    the start of its title; none is cut down to "…" to make room for the others."""
    links = [
        make_link(
            id=f"{i}" + "z" * 119,
            meta={"title": "T" * 256, "description": "D" * 2000},
            stats={"clicks": 1000 + i, "unique_clicks": 1},
        )
        for i in range(10)
    ]
    embed = link_page_embed("x" * 256, links, page=1, pages=3, total=30)
    assert_within_limits(embed)
    assert len(embed.fields) == 10
    lengths = [len(field.value or "") for field in embed.fields]
    assert max(lengths) - min(lengths) <= 1, lengths
    for i, field in enumerate(embed.fields):
        assert (field.name or "").startswith(f"{i + 1}. dsc.gg/{i}zzz")
        assert (field.value or "").startswith(f"Server invite · {1000 + i:,} clicks\n**TTTTTTTTTT")


def test_page_of_links_escapes_their_text() -> None:
    link = make_link(id="a_b_c", meta={"title": "@everyone __x__", "description": "<@123456789012345678>"})
    embed = link_page_embed("Search", [link], page=1, pages=1, total=1)
    assert "a\\_b\\_c" in (embed.fields[0].name or "")
    value = embed.fields[0].value or ""
    assert "@everyone" not in value
    assert "<@123456789012345678>" not in value


def test_empty_page_says_so() -> None:
    embed = link_page_embed(
        "Search results for “x”", [], page=1, pages=1, total=0, empty="No links match “x”."
    )
    assert embed.description == "No links match “x”."
    assert embed.footer.text == "Page 1/1 · 0 links"
    assert not embed.fields


def test_record_page_lists_slugs_and_who_made_them() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    records = [
        LinkRecord(1, "first_one", 11, 11, when, when),
        LinkRecord(1, "second", 11, 22, when, when),
    ]
    embed = record_page_embed(records, page=1, pages=3, total=21, guild_name="My **Guild**")
    lines = (embed.description or "").splitlines()
    assert (
        lines[0]
        == f"[dsc.gg/first\\_one](https://dsc.gg/first_one) · by <@11> · <t:{int(when.timestamp())}:R>"
    )
    assert "last changed by <@22>" in lines[1]
    assert embed.title == "dsc.gg links of My \\*\\*Guild\\*\\*"
    assert embed.footer.text == "Page 1/3 · 21 links"
    assert_within_limits(embed)


def test_empty_record_page_points_to_link_create() -> None:
    embed = record_page_embed([], page=1, pages=1, total=0)
    assert "/link create" in (embed.description or "")
