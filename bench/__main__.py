"""Run the benchmarks: ``python -m bench`` (all) or ``python -m bench client`` (by name).

A bench module lives in ``bench/<name>.py``, is listed in ``BENCHES`` and defines ``main()``,
either ``async def main() -> None`` or ``def main() -> None``, printing its own report. Figures
are ratios against baselines measured in the same run, so they mean something on any machine.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import sys
import time

#: Module names under bench/, run in this order.
BENCHES: tuple[str, ...] = (
    "client",
    "ratelimit",
    "latency",
    "concurrency",
    "top_burst",
    "memory",
    "startup",
    "api",
    "dashboard",
    "storage",
)


def run(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    entry = module.main
    print(f"== bench.{name} ==", flush=True)
    started = time.perf_counter()
    if inspect.iscoroutinefunction(entry):
        asyncio.run(entry())
    else:
        entry()
    print(f"== bench.{name} done in {time.perf_counter() - started:.1f} s ==\n", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benches to run (default: all of {', '.join(BENCHES)})")
    parser.add_argument("--list", action="store_true", help="list the benches and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(BENCHES))
        return 0
    unknown = [name for name in args.names if name not in BENCHES]
    if unknown:
        parser.error(f"unknown bench {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    for name in args.names or BENCHES:
        run(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
