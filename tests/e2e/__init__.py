"""Helpers for running the real bot process against the loopback fakes (end-to-end tests, benches).

``BotProcess`` starts ``python -m tests.e2e_launcher`` (which runs ``python -m bot``) with a clean
environment: only the variables given, no ``.env`` (the working directory is a temporary folder),
stderr captured to a file. Every wait is bounded; ``stop()`` always leaves no process behind.

``Driver`` sends interactions through an in-process :class:`tests.fakes.discord.FakeDiscord` and
waits for what an admin would see::

    async with FakeDiscord() as fake:
        bot = BotProcess(env=bot_env(fake, dscgg_url, tmp_path), workdir=tmp_path)
        await bot.start()
        driver = Driver(fake)
        await driver.wait_connected(bot)
        record = await driver.command("link info", {"slug": "x"})
        message = await driver.final_message(record)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.settings import Settings
from tests.fakes.discord import LOADING, Callback, FakeDiscord, InteractionRecord
from tests.harness import ADMIN, FakeUser, Message, Payloads

__all__ = ["REPO_ROOT", "SETTING_NAMES", "BotProcess", "Driver", "base_env", "bot_env", "vm_rss_kib"]

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Every setting the bot reads: never inherited from the developer's environment.
SETTING_NAMES = tuple(name.upper() for name in Settings.model_fields)
_LAUNCHER_NAMES = (
    "FAKE_DISCORD_API",
    "FAKE_DISCORD_GATEWAY",
    "E2E_BOT_MODULE",
    "E2E_EXTRA_EXTENSIONS",
    "E2E_DSCGG_WINDOW_SCALE",
)


def base_env(**extra: str) -> dict[str, str]:
    """The parent's environment without any bot setting or launcher switch, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES and k not in _LAUNCHER_NAMES}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def bot_env(fake: FakeDiscord, dscgg_url: str, workdir: Path, **settings: str) -> dict[str, str]:
    """Environment for the bot against ``fake`` and the fake dsc.gg at ``dscgg_url``."""
    values = {
        "FAKE_DISCORD_API": fake.api_base,
        "FAKE_DISCORD_GATEWAY": fake.gateway_url,
        "DISCORD_TOKEN": "e2e-bot-token-Zq81fB2kWm",
        "DATABASE_PATH": str(workdir / "data" / "bot.sqlite3"),
        "DSCGG_API_URL": dscgg_url,
        "HEALTH_FILE": str(workdir / "health"),
        "LOG_LEVEL": "INFO",
        "API_PORT": "",  # the HTTP API is off unless a test turns it on (API_PORT=0: any free port)
    }
    values.update(settings)
    return base_env(**values)


class BotProcess:
    """One run of ``python -m <module> <args>`` (default: the e2e launcher, i.e. the real bot)."""

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        workdir: Path,
        args: Sequence[str] = (),
        module: str = "tests.e2e_launcher",
        name: str = "bot",
    ) -> None:
        self.env = dict(env)
        self.workdir = workdir
        self.args = list(args)
        self.module = module
        self.stderr_path = workdir / f"{name}.stderr"
        self.process: asyncio.subprocess.Process | None = None
        self.started_at = 0.0  # time.monotonic() just before spawning (same clock as the fakes)
        self._stderr_file: Any = None
        self._offset = 0  # output of earlier runs with the same name is not this run's

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> BotProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._stderr_file = self.stderr_path.open("ab")
        self._offset = self._stderr_file.tell()
        self.started_at = time.monotonic()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            *self.args,
            cwd=self.workdir,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._stderr_file,
            stderr=self._stderr_file,
        )
        return self

    def stderr(self) -> str:
        """What this run printed (stdout and stderr) so far."""
        try:
            with self.stderr_path.open("rb") as handle:
                handle.seek(self._offset)
                return handle.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    async def wait_for_log(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:  # noqa: ASYNC109
        """Wait until the process's output matches ``pattern`` (a regex); fail early if it exits."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.stderr())
            if found:
                return found
            if self.process is not None and self.process.returncode is not None:
                raise AssertionError(
                    f"process exited ({self.process.returncode}) before logging {pattern!r}:\n{self.stderr()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} within {timeout}s; output so far:\n{self.stderr()}")
            await asyncio.sleep(0.02)

    def send_signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait(self, timeout: float = 15.0) -> int:  # noqa: ASYNC109
        assert self.process is not None
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"process still running after {timeout}s:\n{self.stderr()}") from None

    async def stop(self, timeout: float = 15.0) -> int | None:  # noqa: ASYNC109
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL. Safe to call more than once."""
        code: int | None = None
        if self.process is not None:
            if self.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self.process.terminate()
                try:
                    await asyncio.wait_for(self.process.wait(), timeout)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        self.process.kill()
                    await self.process.wait()
            code = self.process.returncode
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None
        return code


def vm_rss_kib(pid: int) -> int:
    """Resident memory of a running process in KiB (Linux ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Driver:
    """Sends interactions through the in-process fake Discord and waits for the visible answer."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.payloads = Payloads(fake)

    async def wait_connected(self, bot: BotProcess | None = None, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until a gateway session has identified (the fake then sends READY)."""

        def connected() -> bool:
            if bot is not None and bot.returncode is not None:
                raise AssertionError(f"bot exited ({bot.returncode}) before connecting:\n{bot.stderr()}")
            return bool(self.fake.identified_sessions)

        await self.fake.wait_for(connected, timeout)

    async def command(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: FakeUser = ADMIN,
        guild: int | None = None,
    ) -> InteractionRecord:
        payload = self.payloads.command(name, options, user=user, guild=guild)
        return await self.fake.dispatch_interaction(payload)

    async def first_callback(self, record: InteractionRecord, timeout: float = 5.0) -> Callback:  # noqa: ASYNC109
        return await self.fake.wait_for_callback(record.id, timeout)

    def _message(self, record: InteractionRecord) -> dict[str, Any] | None:
        mid = record.original_message_id
        return self.fake.messages.get(mid) if mid is not None else None

    async def final_message(
        self,
        record: InteractionRecord,
        *,
        contains: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> Message:
        """The interaction's original message once it is no longer "thinking" (and, if given, shows
        ``contains`` somewhere in its text)."""

        def done() -> Message | None:
            data = self._message(record)
            if data is None or int(data.get("flags") or 0) & LOADING:
                return None
            message = Message(data)
            if contains is not None and contains not in message.text():
                return None
            return message

        try:
            result: Message = await self.fake.wait_for(done, timeout)
        except TimeoutError:
            raise AssertionError(
                f"no final answer{f' containing {contains!r}' if contains else ''} within {timeout}s; "
                f"callbacks: {[(cb.type, cb.status, cb.data) for cb in record.callbacks]}, "
                f"message: {self._message(record)}"
            ) from None
        return result

    async def modal(self, record: InteractionRecord, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        callback = await self.first_callback(record, timeout)
        details = (callback.type, callback.status, callback.data)
        assert callback.type == 9, f"expected a modal, got {details}"
        assert callback.accepted, f"the modal was refused: {details}"
        return callback.data

    async def submit_modal(
        self, record: InteractionRecord, values: Mapping[str, str], *, user: FakeUser = ADMIN
    ) -> InteractionRecord:
        modal = await self.modal(record)
        payload = self.payloads.modal_submit(modal, values, user=user, origin=record.payload)
        return await self.fake.dispatch_interaction(payload)

    async def click(
        self, record: InteractionRecord, label: str, *, user: FakeUser = ADMIN
    ) -> InteractionRecord:
        """Press the button labelled ``label`` on the interaction's original message."""
        data = self._message(record)
        assert data is not None, "the interaction has no message to click on"
        message = Message(data)
        button = next((b for b in message.buttons() if b.get("label") == label), None)
        assert button is not None, (
            f"no {label!r} button; buttons: {[b.get('label') for b in message.buttons()]}"
        )
        payload = self.payloads.component(message, button["custom_id"], user=user, origin=record.payload)
        return await self.fake.dispatch_interaction(payload)
