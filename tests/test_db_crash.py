"""A process killed with SIGKILL mid-write leaves a consistent database with every committed write whole."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.crypto import TokenCipher
from bot.db import AppStateStore, AuditEventStore, Database, TokenStore

REPO_ROOT = Path(__file__).resolve().parent.parent
GUILD = 111111111111111111

# Round n of the writer, in this order, through the stores: record link slug-n, add audit event n, set
# the token to token-n, set state "rounds" = n; then one two-statement transaction setting "pair-a" and
# "pair-b" to n. After a kill, "rounds" = R says which rounds completed: everything else must be exactly
# rounds 1..R, or 1..R+1 for the writes of the round that was cut short, and the pair must be equal.
WRITER = r"""
import asyncio, sys
from sqlalchemy import text
from bot.crypto import TokenCipher
from bot.db import AppStateStore, AuditEventStore, Database, LinkRecordStore, TokenStore

async def main(path, key, guild):
    async with Database.open(path) as db:
        links, tokens = LinkRecordStore(db), TokenStore(db, TokenCipher([key]))
        audit, state = AuditEventStore(db, keep=1_000_000), AppStateStore(db)
        # Resume after the last round that reached its audit event (a cut-short round may have).
        latest = await audit.latest(guild, 1)
        start = latest[0].payload["round"] if latest else 0
        for n in range(start + 1, 10**9):
            await links.record(guild, f"slug-{n}", n)
            await audit.add(guild, "round", n, f"slug-{n}", {"round": n, "pad": "x" * 2000})
            await tokens.set(guild, f"token-round-{n}", set_by=n)
            await state.set("rounds", str(n))
            async with db.transaction() as conn:
                for name in ("pair-a", "pair-b"):
                    await conn.execute(
                        text("INSERT OR REPLACE INTO app_state VALUES (:key, :value)"),
                        {"key": name, "value": str(n)},
                    )
            if n == start + 1:
                print("ready", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


#: Longest wait for the writer to start, or to die once killed; a hung writer fails the test instead
#: of hanging CI.
WAIT = 30.0


async def run_writer_and_kill(path: Path, key: str, rng: random.Random) -> None:
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER,
        str(path),
        key,
        str(GUILD),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment,
    )
    try:
        assert writer.stdout is not None
        try:
            ready = await asyncio.wait_for(writer.stdout.readline(), WAIT)
        except TimeoutError:
            pytest.fail(f"the writer did not report ready within {WAIT} seconds")
        if ready.strip() != b"ready":
            writer.kill()
            _, errors = await asyncio.wait_for(writer.communicate(), WAIT)
            pytest.fail(f"the writer did not start: {errors.decode(errors='replace')}")
        await asyncio.sleep(rng.uniform(0.02, 0.25))
        assert writer.returncode is None, "the writer stopped by itself"
        os.kill(writer.pid, signal.SIGKILL)
        await asyncio.wait_for(writer.wait(), WAIT)
        assert writer.returncode == -signal.SIGKILL
    finally:
        if writer.returncode is None:
            writer.kill()
            await asyncio.wait_for(writer.wait(), WAIT)
    # The kill left a write-ahead log behind: reopening really goes through crash recovery.
    assert path.with_name(f"{path.name}-wal").stat().st_size > 0


async def check_consistent(path: Path, key: str) -> int:
    # Recovery happens on open: the WAL's committed frames are kept, the torn tail is dropped.
    async with Database.open(path) as db:
        assert await db.fetch_value("PRAGMA integrity_check") == "ok"
        assert await db.fetch_all("PRAGMA foreign_key_check") == []
        state = AppStateStore(db)
        rounds = int(await state.get("rounds") or 0)
        assert rounds >= 1
        completed = list(range(1, rounds + 1))
        cut_short = [*completed, rounds + 1]

        slugs = [row.slug for row in await db.fetch_all("SELECT slug FROM link_records")]
        assert sorted(slugs, key=lambda slug: int(slug.split("-")[1])) in (
            [f"slug-{n}" for n in completed],
            [f"slug-{n}" for n in cut_short],
        )
        events = await AuditEventStore(db, keep=1_000_000).latest(GUILD, 1_000_000)
        assert [event.payload["round"] for event in reversed(events)] in (completed, cut_short)
        assert all(
            event.payload["pad"] == "x" * 2000 and event.actor_id == event.payload["round"]
            for event in events
        )
        # The token row is whole (it decrypts) and is from the last round or the one cut short.
        token = await TokenStore(db, TokenCipher([key])).get(GUILD)
        assert token in (f"token-round-{rounds}", f"token-round-{rounds + 1}")
        # Both halves of the two-statement transaction, or neither.
        pair_a, pair_b = await state.get("pair-a"), await state.get("pair-b")
        assert pair_a == pair_b
        assert pair_a in (str(rounds - 1), str(rounds)) or (rounds == 1 and pair_a is None)
        return rounds


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
async def test_sigkill_mid_write_leaves_consistent_database(tmp_path: Path) -> None:
    path = tmp_path / "data" / "bot.sqlite3"
    key = Fernet.generate_key().decode("ascii")
    # The kill delays come from this seed: DB_CRASH_SEED=<seed> replays a failing run's timing.
    seed = int(os.environ.get("DB_CRASH_SEED") or random.randrange(2**32))
    print(f"DB_CRASH_SEED={seed}")
    rng = random.Random(seed)
    previous = 0
    # Kill, reopen and check, then let the next writer continue from the recovered file.
    try:
        for attempt in range(1, 4):
            await run_writer_and_kill(path, key, rng)
            rounds = await check_consistent(path, key)
            assert rounds > previous, f"attempt {attempt}: no round completed"
            previous = rounds
    except AssertionError as exc:
        raise AssertionError(f"{exc} (replay with DB_CRASH_SEED={seed})") from exc
    # A fresh plain-sqlite look agrees with what the bot sees.
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
