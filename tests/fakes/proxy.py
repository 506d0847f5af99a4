"""A TCP proxy on 127.0.0.1 that a test can cut and restore, to play a service going away.

``TcpProxy(host, port)`` forwards every connection to host:port. ``cut()`` drops the open
connections and closes new ones at once (as a stopped service would); ``silence()`` drops them and
then accepts new ones without ever answering (a hung service); ``restore()`` forwards again.
``TcpProxy()`` without a target starts silenced: a server that accepts and never replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from types import TracebackType
from typing import Self


class Mode(enum.Enum):
    FORWARD = "forward"
    CUT = "cut"
    SILENT = "silent"


class TcpProxy:
    def __init__(self, host: str | None = None, port: int | None = None) -> None:
        self.target = (host, port) if host is not None and port is not None else None
        self.mode = Mode.FORWARD if self.target else Mode.SILENT
        self.port = 0
        #: Connections accepted so far, whatever became of them.
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        # Dropped connections end their handlers; asyncio logs an error for a handler cancelled instead.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    def cut(self) -> None:
        self.mode = Mode.CUT
        self._drop()

    def silence(self) -> None:
        self.mode = Mode.SILENT
        self._drop()

    def restore(self) -> None:
        if self.target is None:
            raise RuntimeError("this proxy has nothing to forward to")
        self.mode = Mode.FORWARD

    def _drop(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self.mode is Mode.CUT or (self.target is None and self.mode is Mode.FORWARD):
            writer.close()
            return
        self._writers.add(writer)
        if self.mode is Mode.SILENT:
            with contextlib.suppress(ConnectionError):
                while await reader.read(65536):
                    pass  # read and forget: never a byte back
            writer.close()
            return
        assert self.target is not None
        host, port = self.target
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        self._writers.add(upstream_writer)
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer), return_exceptions=True
        )
        writer.close()
        upstream_writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if writer.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
