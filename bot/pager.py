"""Page buttons that keep working: paged embeds whose state lives in the buttons' ``custom_id``.

A paged reply (``/top``, ``/search``, ``/link list``, ``/dscgg audit``) carries five buttons (first,
previous, position, next, last). Nothing about them is held in memory: each button's ``custom_id`` says
which *source* renders the pages, the page the message shows, who may press, which button it is and
the source's arguments::

    pg:<source>:<page>:<owner_id>:<button>[:<args>]        e.g.  pg:search:2:1180…101:n:bot:25:tickets

``PageButton`` is a ``discord.ui.DynamicItem`` registered once with ``bot.add_dynamic_items`` in
``setup_hook``, so a press is understood by any process, including one started after the message was
sent: a press after a restart shows the right page instead of "This interaction failed".

Sources. A source is registered under a short name (``Pager.register``) and renders a page on demand::

    async def render(bot: DscBot, interaction: Interaction, page: int, args: str) -> Page

``page`` is 0-based and may be out of range (the list shrank, or » asks for ``LAST_PAGE``): the source
clamps it and says in ``Page.index``/``Page.pages`` what it rendered. ``args`` is the string the
command passed to ``Pager.start``; it comes back from a ``custom_id``, so a source re-checks it and
raises ``PagesUnavailable`` when it makes no sense. Sources that fetch from dsc.gg may keep what they
fetched for a while (``Recent``) so that paging does not ask again, and fetch again after a restart.

Rules, as for every button of the bot:

- only the person who ran the command may press (``NOT_YOURS``, ephemeral, for anyone else; the owner
  id is in the ``custom_id``);
- pages only admins may see are registered ``guarded`` (``/link list``, ``/dscgg audit``): each press
  runs the command's own permission decision again (``checks.ensure_allowed``: the server's command
  permission overrides, else Manage Server) before the page renders, because the buttons never expire
  and a member may have lost the permission since. A refusal is the command's own sentence
  (``MissingManageGuild``, ``CommandDenied``) and the message stays as it is. A press carries no
  command id, so the source's top-level command (``"link list"`` → ``/link``) is looked up by name
  (``DscCommandTree.command_id``); when Discord cannot say, only the app-wide overrides and the default
  rule apply. ``/top`` and ``/search`` are public and not guarded;
- every press is answered: acknowledged at once (a deferred update: the message stays as it is while
  the page renders), then the message is edited through the *press's* token; failures go to the tree's
  renderer (``DscCommandTree.render_error``), a ``custom_id`` that is malformed or names an unknown
  source gets a friendly sentence (``PagesUnavailable``);
- public or ephemeral stays as the command chose (a press edits the same message);
- presses on one message are applied one at a time, in order, and move from the page the previous
  press produced: the page last shown on each message is remembered in memory, because a second quick
  press still carries the ``custom_id`` of the page before the first press. Two quick presses of
  Next therefore end two pages later.

No timeout. The buttons are never disabled on a timer: each press brings a fresh 15-minute token of
its own, so a press works however old the message is (an ephemeral message lasts until the user's
client forgets it). The command's own token is not needed after the first page.

Arguments that do not fit. A ``custom_id`` holds at most 100 characters. Arguments too long for it
(a long ``/search`` query) are kept in memory under a short id instead (``pg:…:n~<id>``): such buttons
work until the bot restarts, after which a press is answered with ``PagesUnavailable`` ("run the
command again"), never with a truncated query.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

import discord

from bot import checks
from bot.failures import PagesUnavailable
from bot.i18n import N_, Tr, for_user
from bot.views import NOT_YOURS

if TYPE_CHECKING:
    from bot.client import DscBot

__all__ = [
    "CUSTOM_ID_MAX",
    "LAST_PAGE",
    "Page",
    "PageButton",
    "PageKey",
    "PageRenderer",
    "Pager",
    "Recent",
]

log = logging.getLogger(__name__)

#: Discord's limit on a component's ``custom_id``.
CUSTOM_ID_MAX = 100
#: The page » asks for: sources clamp it to their last page.
LAST_PAGE = 999_999
#: How many messages' last shown page, and how many over-long argument strings, are kept in memory.
REMEMBERED = 4096

_NONE = discord.AllowedMentions.none()
_SOURCE_NAME = re.compile(r"[a-z][a-z0-9_]{0,15}")
_KEY = re.compile(
    r"pg:(?P<source>[a-z][a-z0-9_]{0,15}):(?P<page>\d{1,6}):(?P<owner>\d{1,20}):(?P<button>[fpnli])"
    r"(?:(?P<sep>[:~])(?P<args>.*))?",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Page:
    """A rendered page that also says where it is: the list may have grown or shrunk meanwhile."""

    embed: discord.Embed
    #: 0-based index of the page actually rendered (clamped by the source).
    index: int
    #: How many pages there are now.
    pages: int


#: ``render(bot, interaction, page, args)`` → the page; see the module docstring.
PageRenderer = Callable[["DscBot", discord.Interaction[Any], int, str], Awaitable[Page]]


class Button(enum.StrEnum):
    FIRST = "f"
    PREVIOUS = "p"
    POSITION = "i"
    NEXT = "n"
    LAST = "l"

    def target(self, current: int) -> int:
        """The page this button leads to from ``current``."""
        match self:
            case Button.FIRST:
                return 0
            case Button.PREVIOUS:
                return max(current - 1, 0)
            case Button.NEXT:
                return min(current + 1, LAST_PAGE)
            case Button.LAST:
                return LAST_PAGE
        return current


def _length(text: str) -> int:
    """Length as Discord counts it (UTF-16 code units: never less than Python's ``len``)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True, slots=True)
class PageKey:
    """What one page button's ``custom_id`` says."""

    source: str
    #: The page shown on the message when this button was put there (0-based).
    page: int
    owner_id: int
    button: Button
    #: The source's arguments, or (``stashed``) the id under which they are kept in memory.
    args: str = ""
    stashed: bool = False

    @property
    def custom_id(self) -> str:
        head = f"pg:{self.source}:{self.page}:{self.owner_id}:{self.button.value}"
        if self.stashed:
            return f"{head}~{self.args}"
        return f"{head}:{self.args}" if self.args else head

    def fits(self) -> bool:
        return _length(self.custom_id) <= CUSTOM_ID_MAX

    @classmethod
    def parse(cls, custom_id: str) -> PageKey | None:
        """The key in ``custom_id``, or None when it is not one this bot writes."""
        match = _KEY.fullmatch(custom_id)
        if match is None:
            return None
        return cls(
            source=match["source"],
            page=int(match["page"]),
            owner_id=int(match["owner"]),
            button=Button(match["button"]),
            args=match["args"] or "",
            stashed=match["sep"] == "~",
        )


_LABELS: tuple[tuple[Button, str, discord.ButtonStyle], ...] = (
    (Button.FIRST, "«", discord.ButtonStyle.secondary),
    (Button.PREVIOUS, N_("‹ Prev"), discord.ButtonStyle.primary),
    (Button.POSITION, "", discord.ButtonStyle.secondary),
    (Button.NEXT, N_("Next ›"), discord.ButtonStyle.primary),
    (Button.LAST, "»", discord.ButtonStyle.secondary),
)


class PageButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=re.compile(r"pg:.*", re.DOTALL)
):
    """A page button, rebuilt from its ``custom_id`` on every press (in any process).

    The template takes every ``custom_id`` starting with ``pg:``, also malformed ones, so that each
    of them is answered (``from_custom_id`` never raises: discord.py would drop the press silently).
    """

    def __init__(
        self,
        custom_id: str,
        *,
        key: PageKey | None,
        label: str | None = None,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
        disabled: bool = False,
    ) -> None:
        super().__init__(
            discord.ui.Button(label=label, style=style, disabled=disabled, custom_id=custom_id, row=0)
        )
        self.key = key

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(match.string, key=PageKey.parse(match.string))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        pager = getattr(interaction.client, "pager", None)
        if isinstance(pager, Pager):
            await pager.press(interaction, self.key)
        else:  # pragma: no cover - DscBot always has one
            await _render_error(interaction, PagesUnavailable())


async def _render_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    tree = getattr(interaction.client, "tree", None)
    render = getattr(tree, "render_error", None)
    if render is not None:
        await render(interaction, error)
    else:  # pragma: no cover - the bot always runs with DscCommandTree
        log.error("Error behind a page button with no tree to report it", exc_info=error)


async def _ensure_allowed(interaction: discord.Interaction[Any], command: str) -> None:
    """The permission decision of ``/command`` for the presser, as when they run it; raises its
    refusal (``MissingManageGuild``, ``CommandDenied``, ``NotInGuild``).

    A button's interaction carries no command id, so the command's overrides are found by its
    top-level name. If the bot cannot learn that id (Discord did not answer), ``command_id`` stays
    None: the app-wide overrides and the default rule (Manage Server) still apply, only overrides set
    on this one command are not seen.
    """
    command_id: int | None = None
    resolve = getattr(getattr(interaction.client, "tree", None), "command_id", None)
    if resolve is not None:
        command_id = await resolve(command.lstrip("/").split()[0], guild_id=interaction.guild_id)
    await checks.ensure_allowed(interaction, command_id=command_id)


K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """At most ``size`` values, each for ``ttl`` seconds: e.g. the list a paged reply was made from."""

    def __init__(self, *, ttl: float, size: int = 256) -> None:
        self.ttl = ttl
        self.size = size
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        if found is None:
            return None
        if time.monotonic() - found[0] > self.ttl:
            del self._items[key]
            return None
        return found[1]

    def put(self, key: K, value: V) -> None:
        self._items[key] = (time.monotonic(), value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


@dataclass(slots=True)
class _Turn:
    lock: asyncio.Lock
    users: int = 0


@dataclass(frozen=True, slots=True)
class _Source:
    render: PageRenderer
    #: How users start it again, for the sentence when its buttons cannot be served ("`/top`").
    command: str | None
    #: Whether each press re-checks that the presser may still use ``command`` (admin-only pages).
    guarded: bool = False


class Pager:
    """The sources, and what the process remembers about the messages being paged."""

    def __init__(self, *, remembered: int = REMEMBERED) -> None:
        self._sources: dict[str, _Source] = {}
        self._remembered = remembered
        #: message id → the page the last edit put on it.
        self._shown: OrderedDict[int, int] = OrderedDict()
        #: message id → the lock presses on it take turns with.
        self._turns: dict[int, _Turn] = {}
        #: stash id → arguments too long for a custom_id.
        self._stash: OrderedDict[str, str] = OrderedDict()

    # ---------------------------------------------------------------- sources

    def register(
        self, name: str, render: PageRenderer, *, command: str | None = None, guarded: bool = False
    ) -> None:
        """Serve pages named ``name`` with ``render``; ``command`` (e.g. ``"top"``) is named to users
        when old buttons of this source can no longer be served.

        ``guarded``: the pages are for those who may use ``command`` (e.g. ``"link list"``, guarded by
        ``checks.manage_guild()``), and every press checks that the presser still may."""
        if not _SOURCE_NAME.fullmatch(name):
            raise ValueError(f"page source name {name!r} must match {_SOURCE_NAME.pattern}")
        if name in self._sources:
            raise ValueError(f"page source {name!r} is registered already")
        if guarded and not (command or "").strip():
            raise ValueError(f"guarded page source {name!r} must name its command")
        self._sources[name] = _Source(render, command, guarded)

    def unregister(self, name: str) -> None:
        self._sources.pop(name, None)

    @property
    def sources(self) -> frozenset[str]:
        return frozenset(self._sources)

    # ---------------------------------------------------------------- the command's first page

    async def start(self, interaction: discord.Interaction[Any], source: str, args: str = "") -> None:
        """Show page 1 of ``source`` as the (deferred) original response, with page buttons if there
        is more than one page. Errors propagate to the command's error handler."""
        entry = self._sources[source]
        page = await entry.render(interaction.client, interaction, 0, args)
        key = self._fit(PageKey(source, page.index, interaction.user.id, Button.NEXT, args))
        view = self._view(key, page, for_user(interaction)) if page.pages > 1 else None
        await interaction.edit_original_response(embed=page.embed, view=view, allowed_mentions=_NONE)

    # ---------------------------------------------------------------- presses

    async def press(self, interaction: discord.Interaction[Any], key: PageKey | None) -> None:
        """Answer one press of a page button. Never raises."""
        try:
            admit = getattr(getattr(interaction.client, "tree", None), "admit", None)
            if admit is not None:
                admit(interaction)  # raises ShuttingDown during shutdown; tracked for the drain
            if key is None:
                raise PagesUnavailable()
            if interaction.user.id != key.owner_id:
                text = for_user(interaction)._(NOT_YOURS)
                await interaction.response.send_message(text, ephemeral=True, allowed_mentions=_NONE)
                return
            entry = self._sources.get(key.source)
            if entry is None:
                raise PagesUnavailable()
            args = self._unstash(key.args) if key.stashed else key.args
            if args is None:
                raise PagesUnavailable(entry.command)
            await interaction.response.defer()  # acknowledged; the message stays while the page renders
            if key.button is Button.POSITION or interaction.message is None:
                return  # the position button is never enabled
            if entry.guarded:
                await _ensure_allowed(interaction, entry.command or "")
            async with self._turn(interaction.message.id):
                current = self._shown.get(interaction.message.id, key.page)
                page = await entry.render(interaction.client, interaction, key.button.target(current), args)
                view = self._view(
                    self._fit(replace(key, args=args, stashed=False)), page, for_user(interaction)
                )
                await interaction.edit_original_response(embed=page.embed, view=view, allowed_mentions=_NONE)
                self._remember(interaction.message.id, page.index)
        except Exception as error:
            await _render_error(interaction, error)

    @contextlib.asynccontextmanager
    async def _turn(self, message_id: int) -> AsyncIterator[None]:
        """Presses on one message, one at a time, in the order they asked."""
        turn = self._turns.get(message_id)
        if turn is None:
            turn = self._turns[message_id] = _Turn(asyncio.Lock())
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if turn.users == 0:
                self._turns.pop(message_id, None)

    def _remember(self, message_id: int, page: int) -> None:
        self._shown[message_id] = page
        self._shown.move_to_end(message_id)
        while len(self._shown) > self._remembered:
            self._shown.popitem(last=False)

    # ---------------------------------------------------------------- custom ids

    def _fit(self, key: PageKey) -> PageKey:
        """``key`` as it can be sent: arguments too long for a custom_id are kept here instead."""
        if key.stashed or key.fits():
            return key
        stash_id = base64.urlsafe_b64encode(
            hashlib.blake2b(f"{key.source}\0{key.args}".encode(), digest_size=9).digest()
        ).decode("ascii")
        self._stash[stash_id] = key.args
        self._stash.move_to_end(stash_id)
        while len(self._stash) > self._remembered:
            self._stash.popitem(last=False)
        fitted = replace(key, args=stash_id, stashed=True)
        assert fitted.fits(), "a source name, page and owner id always fit"
        return fitted

    def _unstash(self, stash_id: str) -> str | None:
        args = self._stash.get(stash_id)
        if args is not None:
            self._stash.move_to_end(stash_id)
        return args

    @staticmethod
    def _view(key: PageKey, page: Page, t: Tr) -> discord.ui.View:
        """The five buttons for ``page``, each carrying ``key`` with its own button letter, labelled in
        the language of the one who pages (``t``)."""
        pages = max(page.pages, 1)
        index = min(max(page.index, 0), pages - 1)
        at_start, at_end = index <= 0, index >= pages - 1
        disabled = {
            Button.FIRST: at_start,
            Button.PREVIOUS: at_start,
            Button.POSITION: True,
            Button.NEXT: at_end,
            Button.LAST: at_end,
        }
        view = discord.ui.View(timeout=None)
        for button, label, style in _LABELS:
            this = replace(key, page=index, button=button)
            view.add_item(
                PageButton(
                    this.custom_id,
                    key=this,
                    label=t._(label) if label else f"{index + 1}/{pages}",
                    style=style,
                    disabled=disabled[button],
                )
            )
        return view
