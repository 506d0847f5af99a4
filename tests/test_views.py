"""ConfirmView on its own: who may press, what the buttons show, what timeouts do.

The command tests drive the same view through the harness (real payloads, the fake Discord); these
tests pin the view's own rules with small stand-ins for the interaction objects. Page buttons are
not a view any more: tests/test_pager.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import discord
import pytest

from bot.views import MAX_TIMEOUT, NOT_YOURS, ConfirmView

OWNER = 111
OTHER = 222


class FakeResponse:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.edits: list[dict[str, Any]] = []
        self.deferred = 0
        self.log: list[str] = []  # shared with the interaction: the order things happened in

    async def defer(self) -> None:
        self.deferred += 1
        self.log.append("defer")

    async def send_message(self, content: str, **kwargs: Any) -> None:
        self.sent.append((content, kwargs))

    async def edit_message(self, **kwargs: Any) -> None:
        self.edits.append(kwargs)


@dataclass
class FakeUser:
    id: int


@dataclass
class FakeInteraction:
    """Just what the views touch; ``edit_original_response`` may be made to fail."""

    user_id: int = OWNER
    expired: bool = False
    fail_with: BaseException | None = None
    response: FakeResponse = field(default_factory=FakeResponse)
    original_edits: list[dict[str, Any]] = field(default_factory=list)
    client: Any = None
    id: int = 1

    @property
    def user(self) -> FakeUser:
        return FakeUser(self.user_id)

    def is_expired(self) -> bool:
        return self.expired

    async def edit_original_response(self, **kwargs: Any) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.response.log.append("edit")
        self.original_edits.append(kwargs)


def http_error(
    status: int, cls: type[discord.HTTPException] = discord.HTTPException
) -> discord.HTTPException:
    class _Resp:
        reason = "x"

    resp: Any = _Resp()
    resp.status = status
    return cls(resp, {"code": 10008, "message": "Unknown Message"})


def quiet(options: dict[str, Any]) -> bool:
    """The message goes out with AllowedMentions.none()."""
    mentions = options.get("allowed_mentions")
    return mentions is not None and mentions.to_dict() == discord.AllowedMentions.none().to_dict()


# ------------------------------------------------------------------------------------------ owner


async def test_only_the_invoker_may_press_and_others_are_told_so() -> None:
    view = ConfirmView(owner_id=OWNER)
    stranger = FakeInteraction(user_id=OTHER)
    assert await view.interaction_check(stranger) is False  # type: ignore[arg-type]
    [(text, options)] = stranger.response.sent
    assert text == NOT_YOURS
    assert options["ephemeral"] is True
    assert quiet(options)
    owner = FakeInteraction(user_id=OWNER)
    assert await view.interaction_check(owner) is True  # type: ignore[arg-type]
    assert owner.response.sent == []


async def test_confirm_refuses_others_too() -> None:
    view = ConfirmView(owner_id=OWNER)
    stranger = FakeInteraction(user_id=OTHER)
    assert await view.interaction_check(stranger) is False  # type: ignore[arg-type]
    assert stranger.response.sent[0][0] == NOT_YOURS
    assert stranger.response.sent[0][1]["ephemeral"] is True
    assert view.value is None


# ------------------------------------------------------------------------------------------ timeout


@pytest.mark.parametrize("error", [http_error(404, discord.NotFound), http_error(401), http_error(500)])
async def test_timeout_edit_failures_are_swallowed(error: discord.HTTPException) -> None:
    view = ConfirmView(owner_id=OWNER)
    command = FakeInteraction(fail_with=error)
    view.attach(command)  # type: ignore[arg-type]
    await view.on_timeout()  # no exception
    assert view.confirm.disabled


async def test_timeout_after_every_token_expired_does_not_try() -> None:
    view = ConfirmView(owner_id=OWNER)
    command = FakeInteraction(expired=True, fail_with=AssertionError("must not be called"))
    view.attach(command)  # type: ignore[arg-type]
    await view.on_timeout()


def test_timeouts_are_capped_below_the_token_life() -> None:
    assert ConfirmView(owner_id=1, timeout=3600).timeout == MAX_TIMEOUT
    assert MAX_TIMEOUT < 15 * 60
    assert ConfirmView(owner_id=1, timeout=5).timeout == 5


# ------------------------------------------------------------------------------------------ confirm


async def test_confirm_sets_value_acknowledges_then_stops() -> None:
    view = ConfirmView(owner_id=OWNER, working="Deleting dsc.gg/x…")
    press = FakeInteraction()
    waiter = asyncio.create_task(view.wait())
    await view.confirm.callback(press)  # type: ignore[arg-type]
    assert await asyncio.wait_for(waiter, 1) is False  # stopped, not timed out
    assert view.value is True
    [edit] = press.response.edits
    assert edit["content"] == "Deleting dsc.gg/x…"
    assert edit["view"] is view
    assert quiet(edit)
    assert view.confirm.disabled
    assert view.cancel.disabled


async def test_cancel_sets_value_false_and_removes_buttons() -> None:
    view = ConfirmView(owner_id=OWNER, cancelled="Deletion cancelled.")
    press = FakeInteraction()
    await view.cancel.callback(press)  # type: ignore[arg-type]
    assert view.value is False
    assert view.is_finished()
    assert press.response.edits[0]["content"] == "Deletion cancelled."
    assert press.response.edits[0]["view"] is None


async def test_confirm_after_cancel_does_nothing() -> None:
    view = ConfirmView(owner_id=OWNER)
    press = FakeInteraction()
    await view.cancel.callback(press)  # type: ignore[arg-type]
    await view.confirm.callback(press)  # type: ignore[arg-type]
    assert view.value is False
    assert len(press.response.edits) == 1


@pytest.mark.parametrize("second", ["confirm", "cancel"])
async def test_a_second_press_while_the_first_is_answered_is_acknowledged_too(second: str) -> None:
    """A double click: both presses reach the view before it stops; neither may be left unanswered
    (Discord would show "This interaction failed"), and only the first one counts."""
    view = ConfirmView(owner_id=OWNER)
    first, again = FakeInteraction(), FakeInteraction()
    release = asyncio.Event()
    original_edit = first.response.edit_message

    async def slow_edit(**kwargs: Any) -> None:
        await release.wait()
        await original_edit(**kwargs)

    first.response.edit_message = slow_edit  # type: ignore[method-assign]
    pending = asyncio.create_task(view.confirm.callback(first))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    await getattr(view, second).callback(again)
    release.set()
    await pending
    assert view.value is True
    assert again.response.deferred == 1
    assert again.response.edits == []
    assert again.response.sent == []
    [edit] = first.response.edits
    assert edit["content"] == "Deleting…"


async def test_confirm_timeout_says_cancelled_and_disables() -> None:
    view = ConfirmView(owner_id=OWNER, timeout=0.05)
    command = FakeInteraction()
    view.attach(command)  # type: ignore[arg-type]
    await view.on_timeout()
    assert view.value is None
    [edit] = command.original_edits
    assert edit["content"] == "Deletion cancelled: no answer in time."
    assert edit["view"] is view
    assert quiet(edit)
    assert view.confirm.disabled
    assert view.cancel.disabled


def test_confirm_label_is_configurable() -> None:
    view = ConfirmView(owner_id=OWNER, confirm_label="Delete dsc.gg/x")
    assert view.confirm.label == "Delete dsc.gg/x"
    assert view.confirm.style is discord.ButtonStyle.danger
