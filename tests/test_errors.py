"""The error table: every failure a user can meet becomes one friendly sentence with a next step."""

from __future__ import annotations

import json
import logging
import re
import time
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from discord import app_commands

from bot import errors
from bot.db.tokens import TokenUnreadable as StoredTokenUnreadable
from bot.dscgg import errors as api
from bot.failures import Invalid, Reason, reason_of

# Everything a reply must never contain: Python class names, tracebacks, bare API codes.
API_CODES = [*api.ERRORS_BY_CODE, "rate_limit", "payload_received", "foo_bar"]
CLASS_NAMES = [
    "Error",
    "Exception",
    "Traceback",
    "InvalidKey",
    "NotFound",
    "OwnerMismatch",
    "WhitelistOnly",
    "LinkTaken",
    "RateLimited",
    "Unavailable",
    "NoToken",
    "TokenUnreadable",
    "InvalidInput",
    "MissingPermissions",
    "CommandOnCooldown",
    "TransformerError",
    "KeyError",
    "ZeroDivision",
]


def interaction_with(**options: Any) -> Any:
    """Just enough of an Interaction for describe(): the options of the command being answered."""
    return SimpleNamespace(namespace=SimpleNamespace(**options), command=None, guild_id=1, id=2, user=None)


def assert_clean(text: str) -> None:
    for word in CLASS_NAMES:
        assert word not in text, f"{word!r} in reply: {text}"
    for code in API_CODES:
        assert not re.search(rf"(?<![\w/]){re.escape(code)}(?!\w)", text), f"bare code {code!r} in: {text}"
    assert 'File "' not in text
    assert "line " not in text
    assert text.endswith((".", ")")), text


def relative_stamp(text: str) -> int:
    match = re.search(r"<t:(\d+):R>", text)
    assert match, f"no relative timestamp in: {text}"
    return int(match.group(1))


# --------------------------------------------------------------------------------------------- dsc.gg


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            api.InvalidKey(status=401),
            ["rejected the token stored for this server", "`/dscgg token set` again"],
        ),
        (api.OwnerMismatch(status=403), ["owned by a different dsc.gg account", "this server uses"]),
        (api.WhitelistOnly(status=403), ["**whitelisted**", "dsc.gg/developer", "`/top` still works"]),
        (api.LinkTaken(status=400), ["already taken", "another slug"]),
        (api.NotFound(status=404), ["couldn't find", "spelling"]),
        (api.OwnerBlacklisted(status=403), ["blacklisted", "dsc.gg support"]),
        (api.BadRequest("Redirect is not valid", status=400), ["refused the request: Redirect is not valid"]),
        (api.BadRequest(status=400), ["refused the request as invalid", "Check the options"]),
        (api.VersionDeprecated(status=410), ["no longer supports the API version", "operator"]),
        (api.PasswordProtected(status=403), ["protected by a password"]),
        (
            api.UnknownAPIError("weird", status=400, code="foo_bar"),
            ["error this bot doesn't know", "operator"],
        ),
    ],
)
def test_each_dscgg_code_has_its_sentence(error: api.APIError, expected: list[str]) -> None:
    text = errors.describe(error)
    for part in expected:
        assert part in text
    assert_clean(text)


def test_sentences_name_the_slug_when_the_command_has_one() -> None:
    taken = errors.describe(api.LinkTaken(status=400), interaction_with(slug="my-server"))
    assert taken.startswith("`dsc.gg/my-server` is already taken")
    missing = errors.describe(api.NotFound(status=404), interaction_with(slug="nope"))
    assert "dsc.gg has no link `dsc.gg/nope`" in missing
    mismatch = errors.describe(api.OwnerMismatch(status=403), interaction_with(slug="theirs"))
    assert mismatch.startswith("`dsc.gg/theirs` is owned by a different dsc.gg account")


def test_a_pasted_link_is_named_by_its_slug() -> None:
    mismatch = errors.describe(
        api.OwnerMismatch(status=403), interaction_with(slug="<https://dsc.gg/theirs/>")
    )
    assert mismatch.startswith("`dsc.gg/theirs` is owned by a different dsc.gg account")
    assert "https://" not in mismatch


def test_bad_request_message_reads_as_its_own_sentence() -> None:
    text = errors.describe(api.BadRequest("redirect must conform to type", status=400))
    assert "redirect must conform to type. Check the options" in text
    text = errors.describe(api.BadRequest("Slug too long.", status=400))
    assert "Slug too long. Check the options" in text


def test_bad_request_message_is_escaped_and_bounded() -> None:
    text = errors.describe(api.BadRequest("**bold** @everyone <@123> " + "x" * 1000, status=400))
    assert "**bold**" not in text
    assert "\\*\\*bold\\*\\*" in text
    assert "@everyone" not in text  # escape_mentions breaks it up
    assert len(text) < 500
    assert_clean(text)


def test_distinct_codes_get_distinct_sentences() -> None:
    sentences = {errors.describe(cls(status=400)) for cls in api.ERRORS_BY_CODE.values()}
    assert len(sentences) == len(api.ERRORS_BY_CODE)


# --------------------------------------------------------------------------------------- rate limits


def test_local_rate_limit_names_the_limit_and_when_to_retry() -> None:
    before = time.time()
    text = errors.describe(api.RateLimited(42.2, endpoint="create_link", limit=3, window=60.0))
    assert "creating links (3 per 60 seconds)" in text
    assert before + 42 <= relative_stamp(text) <= time.time() + 44
    assert_clean(text)


def test_server_rate_limit_says_dsc_gg_is_limiting() -> None:
    text = errors.describe(api.RateLimited(5, endpoint="update_link", from_server=True))
    assert "dsc.gg is rate limiting" in text
    assert "editing links (8 per 10 seconds)" in text  # documented numbers when the error has none
    assert relative_stamp(text) >= time.time() + 4
    assert_clean(text)


@pytest.mark.parametrize("from_server", [False, True])
def test_the_tokenless_bucket_is_not_blamed_on_the_servers_token(from_server: bool) -> None:
    # Calls without a token (the top links) share one bucket for the whole bot, every server.
    error = api.RateLimited(8, endpoint="get_top_links", from_server=from_server, anonymous=True)
    text = errors.describe(error)
    assert "token" not in text
    assert "loading the top links (20 per 10 seconds)" in text
    assert "shared by everyone using this bot" in text
    assert relative_stamp(text) >= time.time() + 7
    assert_clean(text)


def test_rate_limit_retry_time_is_never_in_the_past() -> None:
    text = errors.describe(api.RateLimited(0, endpoint="search_links"))
    assert relative_stamp(text) >= int(time.time()) + 1
    assert "searching links" in text


def test_every_endpoint_has_words() -> None:
    for endpoint in errors.ENDPOINTS:
        text = errors.describe(api.RateLimited(1, endpoint=endpoint))
        assert endpoint not in text
        assert_clean(text)


# ------------------------------------------------------------------------------ dsc.gg unavailable


@pytest.mark.parametrize(
    "error",
    [api.Unavailable("timeout"), api.Unavailable("bad gateway", status=502), api.Unavailable("not JSON")],
)
def test_unavailable(error: api.Unavailable) -> None:
    assert errors.describe(error) == "dsc.gg is not answering properly, try again later."


# -------------------------------------------------------------------------------------- bot errors


def test_no_token_points_to_token_set() -> None:
    text = errors.describe(errors.NoToken(5))
    assert "`/dscgg token set`" in text
    assert_clean(text)


@pytest.mark.parametrize("error", [errors.TokenUnreadable(5), StoredTokenUnreadable(5)])
def test_unreadable_token_must_be_set_again(error: Exception) -> None:
    text = errors.describe(error)
    assert "can no longer be read" in text
    assert "set it again with `/dscgg token set`" in text
    assert_clean(text)


def test_rejected_new_token() -> None:
    text = errors.describe(errors.TokenRejected())
    assert "nothing was saved" in text
    assert "`/dscgg token set`" in text


@pytest.mark.parametrize(
    "error",
    [errors.MissingManageGuild(), app_commands.MissingPermissions(["manage_guild"])],
)
def test_missing_manage_server(error: Exception) -> None:
    assert errors.describe(error) == "You need the **Manage Server** permission to use this command."


@pytest.mark.parametrize("error", [errors.NotInGuild(), app_commands.NoPrivateMessage()])
def test_dms_are_refused(error: Exception) -> None:
    assert errors.describe(error) == "This command only works in a server, not in direct messages."


def test_bot_missing_permissions_are_named_like_discord_does() -> None:
    text = errors.describe(app_commands.BotMissingPermissions(["embed_links", "send_messages"]))
    assert "**Embed Links** and **Send Messages**" in text
    assert_clean(text)


def test_cooldown_shows_when() -> None:
    cooldown = app_commands.Cooldown(1, 30)
    text = errors.describe(app_commands.CommandOnCooldown(cooldown, 12.5))
    assert relative_stamp(text) >= time.time() + 12
    assert_clean(text)


def test_invalid_input_names_option_and_problem() -> None:
    text = errors.describe(errors.InvalidInput("redirect", Invalid.REDIRECT_SCHEME, scheme="ftp"))
    assert text == "Check the `redirect` option: it uses `ftp:`; only https:// links are accepted."


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            errors.NotManagedHere("x_y"),
            "`dsc.gg/x_y` isn't managed by this server. If this server's dsc.gg account owns it, bring it "
            "here with `/link adopt slug:x_y`.",
        ),
        (
            errors.ManagedElsewhere("x"),
            "`dsc.gg/x` is already managed by another server that uses this bot, so it can't be adopted "
            "here. Only that server can change it through the bot.",
        ),
    ],
)
def test_link_scoping_sentences(error: Exception, expected: str) -> None:
    assert errors.describe(error) == expected
    assert_clean(expected)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            errors.LinkNotOwned("x"),
            ["`dsc.gg/x` is owned by a different dsc.gg account", "`/dscgg token set`"],
        ),
        (errors.OwnershipUnconfirmed("x"), ["couldn't confirm", "Nothing was adopted", "Try again later"]),
        (errors.CommandDenied(), ["Server Settings → Integrations", "Ask an admin"]),
    ],
)
def test_adopt_and_command_permission_sentences(error: Exception, expected: list[str]) -> None:
    text = errors.describe(error)
    for phrase in expected:
        assert phrase in text, text
    assert_clean(text)


def test_log_channel_unusable_names_channel_and_permissions() -> None:
    text = errors.describe(errors.LogChannelUnusable(42, ["send_messages", "embed_links"]))
    assert "<#42>" in text
    assert "**Send Messages** and **Embed Links**" in text
    assert_clean(text)


def test_transformer_error() -> None:
    error = app_commands.TransformerError(
        "x", discord.AppCommandOptionType.integer, app_commands.Transformer()
    )
    text = errors.describe(error)
    assert "couldn't understand" in text
    assert_clean(text)


@pytest.mark.parametrize(
    "error",
    [
        app_commands.CommandNotFound("gone", []),
        app_commands.CommandSignatureMismatch(app_commands.Group(name="g", description="g")),
    ],
)
def test_stale_commands(error: Exception) -> None:
    assert errors.describe(error) == "The bot's commands are being updated. Try again in a minute."


def test_shutting_down() -> None:
    assert "restarting" in errors.describe(errors.ShuttingDown())


def test_discord_unavailable_says_to_try_again() -> None:
    text = errors.describe(errors.DiscordUnavailable())
    assert text.startswith("Discord is not answering right now")
    assert "Try again in a moment." in text
    assert not errors.is_unexpected(errors.DiscordUnavailable())


def test_generic_check_failure() -> None:
    assert errors.describe(app_commands.CheckFailure()) == "You can't use this command here."


# -------------------------------------------------------------------------------------- unexpected


def raise_bug() -> None:
    missing: dict[str, int] = {}
    missing["key"]  # a KeyError from deep in some code path


def test_unexpected_error_gets_an_id_that_is_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise_bug()
    except KeyError as exc:
        wrapped = app_commands.CommandInvokeError(
            app_commands.Command(name="x", description="x", callback=_cb), exc
        )
    with caplog.at_level(logging.ERROR, logger="bot.errors"):
        text = errors.describe(wrapped)
    error_id = re.search(r"error id: `([0-9a-f]{8})`", text)
    assert error_id, text
    assert_clean(text)
    (record,) = [r for r in caplog.records if r.name == "bot.errors"]
    assert error_id.group(1) in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is KeyError


async def _cb(interaction: discord.Interaction) -> None:
    """Callback for the Command used to wrap errors like discord.py does."""


def test_unexpected_errors_get_fresh_ids() -> None:
    ids = {re.findall(r"`([0-9a-f]{8})`", errors.describe(RuntimeError("x")))[0] for _ in range(20)}
    assert len(ids) == 20


def test_discord_http_failures_are_bugs_not_user_errors() -> None:
    response = SimpleNamespace(status=400, reason="Bad Request")
    http_error = discord.HTTPException(response, {"code": 50035, "message": "Invalid Form Body"})  # type: ignore[arg-type]
    assert errors.is_unexpected(http_error)
    assert "error id" in errors.describe(http_error)


def test_is_unexpected_and_unwrap() -> None:
    assert not errors.is_unexpected(api.LinkTaken(status=400))
    assert errors.is_unexpected(ValueError())
    inner = api.NotFound(status=404)
    wrapped = app_commands.CommandInvokeError(
        app_commands.Command(name="x", description="x", callback=_cb), inner
    )
    assert errors.unwrap(wrapped) is inner
    assert errors.describe(wrapped) == errors.describe(inner)


def test_a_reason_kept_for_later_reads_as_the_sentence_without_logging(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reason = reason_of(api.OwnerMismatch(status=403))
    assert Reason.from_json(json.loads(json.dumps(reason.to_json()))) == reason  # as stored
    assert errors.render(reason) == errors.describe(api.OwnerMismatch(status=403))
    with caplog.at_level(logging.DEBUG):
        assert errors.render(reason_of(RuntimeError("boom"))) == "An unexpected error stopped it."
    assert not caplog.records
