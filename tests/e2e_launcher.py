"""Run the real bot process against FakeDiscord: ``python -m tests.e2e_launcher [run|sync ...]``.

Reads ``FAKE_DISCORD_API`` (e.g. ``http://127.0.0.1:PORT/api/v10``) and ``FAKE_DISCORD_GATEWAY``
(e.g. ``ws://127.0.0.1:PORT/gateway``), points discord.py's REST base and default gateway at them,
then runs the ``bot`` package exactly as ``python -m bot`` would, with the same arguments. The bot's
own code knows nothing about the fake. ``E2E_BOT_MODULE`` names another module to run instead (the
launcher's own tests use a tiny client; the benches a bare discord.py client). ``E2E_EXTRA_EXTENSIONS``
(comma-separated module names) are appended to ``cogs.EXTENSIONS`` before the bot is imported, so
test- or bench-only commands load next to the real ones without being part of the product.
``E2E_DSCGG_WINDOW_SCALE`` (e.g. ``0.02``) multiplies every documented dsc.gg rate-limit window the
bot's limiters use (and the Redis limiter's lease, at least 2 s), to match a
``FakeDscgg(window_scale=...)``: a burst then takes seconds, not minutes.

Only loopback addresses are accepted, so a misconfigured run cannot reach discord.com.
"""

from __future__ import annotations

import os
import runpy
import sys
from urllib.parse import urlsplit

import discord.gateway
import discord.http
import yarl

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _loopback_url(name: str, schemes: tuple[str, ...]) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"e2e_launcher: {name} is not set")
    parts = urlsplit(value)
    if parts.scheme not in schemes or parts.hostname not in LOOPBACK:
        raise SystemExit(f"e2e_launcher: {name} must be a {'/'.join(schemes)} URL on loopback, got {value!r}")
    return value.rstrip("/")


def configure_from_env() -> tuple[str, str]:
    """Point discord.py at the fake; returns (api_base, gateway_url)."""
    api = _loopback_url("FAKE_DISCORD_API", ("http",))
    gateway = _loopback_url("FAKE_DISCORD_GATEWAY", ("ws",))
    discord.http.Route.BASE = api
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    return api, gateway


def add_extensions_from_env() -> tuple[str, ...]:
    """Append ``E2E_EXTRA_EXTENSIONS`` to ``cogs.EXTENSIONS``; returns what was added."""
    extra = tuple(
        name.strip() for name in os.environ.get("E2E_EXTRA_EXTENSIONS", "").split(",") if name.strip()
    )
    if extra:
        import cogs

        if "bot.client" in sys.modules:  # DscBot binds cogs.EXTENSIONS as a default at import time
            raise SystemExit("e2e_launcher: bot.client was imported before E2E_EXTRA_EXTENSIONS applied")
        cogs.EXTENSIONS = (*cogs.EXTENSIONS, *extra)
    return extra


def scale_dscgg_windows_from_env() -> float:
    """Multiply the dsc.gg limiters' windows by ``E2E_DSCGG_WINDOW_SCALE``; returns the factor."""
    scale = float(os.environ.get("E2E_DSCGG_WINDOW_SCALE") or 1.0)
    if scale != 1.0:
        from bot.dscgg import ratelimit

        ratelimit.DEFAULT_LIMITS = {
            endpoint: (count, window * scale)
            for endpoint, (count, window) in ratelimit.DEFAULT_LIMITS.items()
        }
    return scale


def main() -> None:
    configure_from_env()
    add_extensions_from_env()
    scale_dscgg_windows_from_env()
    module = os.environ.get("E2E_BOT_MODULE") or "bot"
    # sys.argv passes through; run_module(alter_sys=True) sets argv[0] to the module's file like -m does
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
