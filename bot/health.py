"""Container health check: ``python -m bot.health [path] [--max-age 60]``.

The running bot touches its health file (HEALTH_FILE) every few seconds while every shard it runs is
connected to Discord, and removes it when it stops. This exits 0 if the file was touched within ``--max-age``
seconds, else 1 — for a Docker ``HEALTHCHECK``. The path defaults to the HEALTH_FILE environment
variable. No settings, network or database are touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["is_fresh", "main"]


def is_fresh(path: Path, max_age: float, *, now: float | None = None) -> bool:
    try:
        modified = path.stat().st_mtime
    except OSError:
        return False
    return (time.time() if now is None else now) - modified <= max_age


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.health", description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=os.environ.get("HEALTH_FILE"), help="the health file")
    parser.add_argument("--max-age", type=float, default=60.0, help="seconds (default 60)")
    args = parser.parse_args(argv)
    if not args.path:
        print("dscgg-bot health: no health file given and HEALTH_FILE is not set", file=sys.stderr)
        return 1
    if is_fresh(Path(args.path), args.max_age):
        return 0
    print(f"dscgg-bot health: {args.path} is missing or older than {args.max_age:g} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
