"""ApiServer: uvicorn serving the API inside the bot's own event loop.

``start()`` binds the socket itself (so a port in use is an ``ApiStartError`` with one clear line, not
uvicorn's ``sys.exit``), then runs ``uvicorn.Server.serve`` as a task. uvicorn installs no signal
handlers: the bot owns SIGTERM/SIGINT and calls ``stop(within)`` from its shutdown, which closes the
gate (new requests: 503 ``shutting-down``), lets running requests finish for ``within`` seconds,
answers those still running with the 503, and stops uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

import uvicorn

from bot.api.app import Envelope, create_app
from bot.api.auth import CredentialLimiter, Identities
from bot.api.deps import ApiState

if TYPE_CHECKING:
    from bot.client import DscBot

__all__ = ["ApiServer", "ApiStartError", "build_api"]

log = logging.getLogger(__name__)

#: Seconds uvicorn itself gets to close connections after the drain.
_CLOSE = 1


class ApiStartError(Exception):
    """The API could not start; ``str()`` is one line for the person starting the bot."""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the bot handles SIGTERM/SIGINT and stops the API itself


def build_api(bot: DscBot) -> Envelope:
    settings = bot.settings
    assert settings.api_url is not None
    state = ApiState(
        bot=bot,
        identities=Identities(bot),
        limiter=CredentialLimiter(settings.api_rate_limit, settings.api_rate_window),
        public_url=settings.api_url,
        deadline=settings.command_deadline,
    )
    return create_app(state)


class ApiServer:
    def __init__(self, bot: DscBot, *, host: str, port: int) -> None:
        self.bot = bot
        self.host = host
        self.port = port
        self.app = build_api(bot)
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=_CLOSE,
            timeout_keep_alive=5,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self._stopped = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve; ApiStartError when the address cannot be used."""
        sock = self._bind()
        self.port = sock.getsockname()[1]
        self._socket = sock
        if self.bot.settings.api_public_url is None:  # API_PORT=0 picked a port: say which one
            self.bot.api_url = self.app.state.public_url = self.url
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]), name="api")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise ApiStartError("the HTTP API stopped during start-up; see the log")
            await asyncio.sleep(0.01)
        log.info("HTTP API listening on %s (public URL %s)", self.url, self.bot.api_url)

    def _bind(self) -> socket.socket:
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise ApiStartError(f"API_HOST {self.host!r} cannot be resolved ({exc.strerror})") from None
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(2048)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise ApiStartError(
                    f"API_PORT {self.port} on {self.host} is already in use: stop what uses it, set another "
                    "API_PORT, or leave API_PORT empty to turn the HTTP API off"
                ) from None
            raise ApiStartError(
                f"cannot listen on {self.host}:{self.port} (API_HOST/API_PORT): {exc.strerror or exc}"
            ) from None
        return sock

    async def stop(self, within: float = 1.0) -> None:
        """Refuse new requests, give running ones ``within`` seconds, answer the rest with a 503, stop."""
        if self._stopped:
            return
        self._stopped = True
        self.app.close_gate()
        if self._task is None:
            return
        running = self.app.in_flight
        if running:
            log.info("HTTP API: finishing %d running request(s)", running)
        if not await self.app.drain(within):
            cut = self.app.cut_off()
            log.warning("HTTP API: %d request(s) still running after %.1f s answered 503", cut, within)
            await self.app.drain(0.5)
        self._server.should_exit = True
        try:
            async with asyncio.timeout(_CLOSE + 0.5):
                await asyncio.shield(self._task)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        except Exception:
            log.exception("HTTP API stopped with an error")
        log.info("HTTP API stopped")
