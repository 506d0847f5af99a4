"""Every command the real bot registers fits Discord's definition limits and the spec's contract.

Checked on what was synced to the fake Discord (what Discord would store) and on the tree itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import discord
import pytest

from tests.fixtures.bot import WiredBot

# Discord's rule for CHAT_INPUT names, restricted to what this bot uses (lowercase ASCII is enough).
NAME_RE = re.compile(r"^[-_'a-z0-9]{1,32}$")
SUBCOMMAND, GROUP = 1, 2
MANAGE_GUILD = str(discord.Permissions(manage_guild=True).value)
GUILD_ONLY_CONTEXTS = [0]


@pytest.fixture
def synced(wired_bot: WiredBot) -> dict[str, dict[str, Any]]:
    commands = wired_bot.discord.commands.get(None) or []
    assert commands, "the bot synced no global commands"
    return {c["name"]: c for c in commands}


def walk(
    command: dict[str, Any], path: str = ""
) -> Iterator[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """(path, node, its plain options) for every invocable command and group node."""
    path = f"{path} {command['name']}".strip()
    options = command.get("options") or []
    subs = [o for o in options if o.get("type") in (SUBCOMMAND, GROUP)]
    yield path, command, [o for o in options if o.get("type") not in (SUBCOMMAND, GROUP)]
    for sub in subs:
        yield from walk(sub, path)


def options_of(synced: dict[str, dict[str, Any]], path: str) -> list[dict[str, Any]]:
    root, *rest = path.split()
    node = synced[root]
    for name in rest:
        node = next(o for o in node["options"] if o["name"] == name)
    return list(node.get("options") or [])


def total_chars(node: dict[str, Any]) -> int:
    count = len(node.get("name", "")) + len(node.get("description", ""))
    for choice in node.get("choices") or []:
        count += len(choice["name"]) + len(str(choice["value"]))
    return count + sum(total_chars(o) for o in node.get("options") or [])


def test_the_expected_commands_are_registered(synced: dict[str, dict[str, Any]]) -> None:
    assert set(synced) == {"dscgg", "link", "top", "search"}
    link_subs = [o["name"] for o in synced["link"]["options"]]
    assert link_subs == ["create", "edit", "delete", "info", "adopt", "list"]


def test_every_command_fits_discords_limits(synced: dict[str, dict[str, Any]]) -> None:
    for root in synced.values():
        assert total_chars(root) <= 8000
        for path, node, options in walk(root):
            assert NAME_RE.match(node["name"]), path
            assert 1 <= len(node["description"]) <= 100, path
            assert len(node.get("options") or []) <= 25, path
            required = [bool(o.get("required")) for o in options]
            assert required == sorted(required, reverse=True), f"{path}: required options must come first"
            for option in options:
                where = f"/{path} {option['name']}"
                assert NAME_RE.match(option["name"]), where
                assert 1 <= len(option["description"]) <= 100, where
                assert option["description"] != "…", f"{where} has no description"
                choices = option.get("choices") or []
                assert len(choices) <= 25, where
                assert not (choices and option.get("autocomplete")), where
                for choice in choices:
                    assert 1 <= len(choice["name"]) <= 100, where
                    assert len(str(choice["value"])) <= 100, where
                if "max_length" in option:
                    assert 1 <= option["max_length"] <= 6000, where


def test_admin_groups_are_guild_only_with_manage_server(synced: dict[str, dict[str, Any]]) -> None:
    for name in ("link", "dscgg"):
        command = synced[name]
        assert str(command["default_member_permissions"]) == MANAGE_GUILD, name
        assert command["contexts"] == GUILD_ONLY_CONTEXTS, name
        assert command.get("dm_permission") is False, name


def test_discovery_is_for_everyone_in_a_server(synced: dict[str, dict[str, Any]]) -> None:
    for name in ("top", "search"):
        command = synced[name]
        assert command.get("default_member_permissions") is None, name
        assert command["contexts"] == GUILD_ONLY_CONTEXTS, name


def names(options: list[dict[str, Any]]) -> list[str]:
    return [o["name"] for o in options]


def test_option_names_are_the_contract(synced: dict[str, dict[str, Any]]) -> None:
    assert names(options_of(synced, "link create")) == [
        "slug", "redirect", "type", "title", "description", "image", "color", "unlisted", "password",
    ]  # fmt: skip
    assert names(options_of(synced, "link edit")) == [
        "slug", "redirect", "type", "title", "description", "image", "color", "unlisted", "password",
        "remove_title", "remove_description", "remove_image", "remove_color", "remove_password",
    ]  # fmt: skip
    assert names(options_of(synced, "link delete")) == ["slug"]
    assert names(options_of(synced, "link info")) == ["slug"]
    assert names(options_of(synced, "link adopt")) == ["slug"]
    assert names(options_of(synced, "link list")) == []
    assert names(options_of(synced, "top")) == ["type", "public"]
    assert names(options_of(synced, "search")) == ["query", "type", "limit", "public"]


def test_option_shapes(synced: dict[str, dict[str, Any]]) -> None:
    create = {o["name"]: o for o in options_of(synced, "link create")}
    assert [o["name"] for o in create.values() if o.get("required")] == ["slug", "redirect"]
    assert [c["value"] for c in create["type"]["choices"]] == ["server", "bot", "template"]
    assert create["unlisted"]["type"] == 5  # boolean
    edit = {o["name"]: o for o in options_of(synced, "link edit")}
    assert [o["name"] for o in edit.values() if o.get("required")] == ["slug"]
    for field in ("title", "description", "image", "color", "password"):
        assert edit[f"remove_{field}"]["type"] == 5  # boolean
        assert not edit[f"remove_{field}"].get("required")
    for path in ("link edit", "link delete", "link info"):
        [slug] = [o for o in options_of(synced, path) if o["name"] == "slug"]
        assert slug.get("autocomplete") is True, path
    assert not create["slug"].get("autocomplete")
    # adopt takes links this server does not manage yet: suggesting its own would be useless, and
    # suggesting other servers' would leak them.
    [adopt_slug] = options_of(synced, "link adopt")
    assert adopt_slug["required"] is True
    assert not adopt_slug.get("autocomplete")
    search = {o["name"]: o for o in options_of(synced, "search")}
    assert search["query"]["required"] is True
    assert (search["limit"]["type"], search["limit"]["min_value"], search["limit"]["max_value"]) == (
        4,
        1,
        100,
    )
    assert search["public"]["type"] == 5
    top = {o["name"]: o for o in options_of(synced, "top")}
    assert not any(o.get("required") for o in top.values())


async def test_the_tree_agrees_with_what_was_synced(
    wired_bot: WiredBot, synced: dict[str, dict[str, Any]]
) -> None:
    tree = wired_bot.bot.tree
    assert tree.translator is not None  # the sync sends every translation of names and descriptions
    local = {c.name: await c.get_translated_payload(tree, tree.translator) for c in tree.get_commands()}
    assert set(local) == set(synced)
    for name, payload in local.items():
        assert payload["options"] == synced[name]["options"], name
