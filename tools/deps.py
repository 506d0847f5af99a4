"""Dependencies: the lock files, their check against pyproject.toml, and the test of the minimums.

``python -m tools.deps lock [--upgrade]`` (``make lock``, ``make lock-upgrade``)
    Resolves pyproject.toml with uv into ``requirements-dev.lock`` (the bot, every extra and the build
    backend) and ``requirements.lock`` (the bot and the build backend), every version pinned with the
    sha256 of each of its files, for every OS and every Python that ``requires-python`` allows
    (``--universal``). Versions already locked are kept unless ``--upgrade``; the runtime lock is
    resolved under the dev lock's pins, so ``make run``, the Docker image and ``make test`` install the
    same versions. Each lock's header holds a digest of pyproject.toml's dependency lists.
``python -m tools.deps check`` (``make check-lock``, run by ``make test`` and ``make run``)
    Fails, with one line saying to run ``make lock``, when those lists changed since the last lock.
    Reads files only.
``python -m tools.deps minimums`` (``make check-minimums``, run by ``make test``)
    Installs the LOWEST versions pyproject.toml allows for its direct dependencies (uv's
    ``--resolution lowest-direct``) into a throwaway venv and runs there: an import of every module,
    ruff, mypy, the lock resolution with uv's minimum, and the smoke tests in ``SMOKE_TESTS``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = "pyproject.toml"
LOCK = "requirements.lock"
DEV_LOCK = "requirements-dev.lock"
#: The header line of a lock that ties it to pyproject.toml's dependency lists.
DIGEST_PREFIX = "# pyproject.toml dependencies sha256: "

#: What the minimum versions must pass besides lint and mypy: one or more test files per dependency,
#: quick ones, plus the real ``python -m bot`` process. Everything else runs with the locked versions.
SMOKE_TESTS: tuple[str, ...] = (
    "tests/test_settings.py",  # pydantic-settings, python-dotenv
    "tests/test_crypto.py",  # cryptography
    "tests/test_db_database.py",  # aiosqlite
    "tests/test_db_stores.py",
    "tests/test_dscgg_models.py",  # pydantic
    "tests/test_dscgg_client.py",  # aiohttp (the client, and the server of the dsc.gg fake), pydantic-core
    "tests/test_command_metadata.py",  # discord.py's app commands
    "tests/test_admin_commands.py",  # interactions through discord.py's CommandTree
    "tests/test_e2e.py",  # the real bot process against the Discord and dsc.gg fakes
    "tests/test_dscgg_redislimit.py",  # redis (asyncio client, Lua scripts)
    "tests/test_api.py",  # fastapi, uvicorn, prometheus-client, swagger-ui-py, httpx
    "tests/test_api_contract.py",  # schemathesis
    "tests/test_dashboard.py",  # jinja2, the dashboard's pages and forms through fastapi/starlette
    "tests/test_i18n.py",  # Babel: reading and compiling the catalogs, plural forms, numbers, extraction
    "tests/test_locales.py",  # Babel: lists and numbers in replies, Accept-Language negotiation
)

_IMPORT_EVERY_MODULE = """
import importlib, pkgutil
for name in ("bot", "cogs"):
    package = importlib.import_module(name)
    for module in pkgutil.walk_packages(package.__path__, name + "."):
        importlib.import_module(module.name)
"""


class DepsError(Exception):
    """A problem the user fixes; the message is one line and says how."""


def load_pyproject(root: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10 or older: say so instead of a traceback
        raise DepsError(
            f"dscgg-bot needs Python 3.11 or newer, {sys.executable} is {sys.version.split()[0]}: "
            "run `make clean`, then `make PYTHON=python3.11 ...` (or newer)"
        ) from None
    with (root / PYPROJECT).open("rb") as file:
        return tomllib.load(file)


def build_requires(pyproject: dict[str, Any]) -> list[str]:
    """The build backend's requirements: locked too, so that installing the project downloads nothing."""
    requires: list[str] = pyproject.get("build-system", {}).get("requires", [])
    return requires


def lowest_python(pyproject: dict[str, Any]) -> str:
    """``3.11`` for ``requires-python = ">=3.11"``: the Python the locks are resolved from."""
    spec = str(pyproject["project"].get("requires-python", ""))
    match = re.fullmatch(r"\s*>=\s*(\d+\.\d+)(\.\d+)?\s*(,.*)?", spec)
    if match is None:
        raise DepsError(f'requires-python must start with ">=X.Y" (found {spec!r})')
    return match.group(1)


def _normalize(requirement: str) -> str:
    return "".join(requirement.split()).lower()


def dependency_digest(pyproject: dict[str, Any]) -> str:
    """A digest of everything in pyproject.toml that the locks are resolved from.

    Tool settings, the version or the description do not count; neither do the order of a list,
    spaces or letter case.
    """
    project = pyproject["project"]
    extras: dict[str, list[str]] = project.get("optional-dependencies", {})
    spec = {
        "requires-python": _normalize(str(project.get("requires-python", ""))),
        "build-system.requires": sorted(_normalize(r) for r in build_requires(pyproject)),
        "dependencies": sorted(_normalize(r) for r in project.get("dependencies", [])),
        "optional-dependencies": {
            _normalize(name): sorted(_normalize(r) for r in reqs) for name, reqs in extras.items()
        },
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def stamp(lock_text: str, digest: str) -> str:
    """Put the digest line at the end of the lock's leading comment block (replacing an old one)."""
    lines = [line for line in lock_text.splitlines(keepends=True) if not line.startswith(DIGEST_PREFIX)]
    header_end = 0
    while header_end < len(lines) and lines[header_end].startswith("#"):
        header_end += 1
    lines.insert(header_end, f"{DIGEST_PREFIX}{digest}\n")
    return "".join(lines)


def locked_digest(lock_text: str) -> str | None:
    for line in lock_text.splitlines():
        if line.startswith(DIGEST_PREFIX):
            return line.removeprefix(DIGEST_PREFIX).strip()
    return None


def check(root: Path) -> str | None:
    """None when both locks were made from pyproject.toml's current dependency lists, else what to do."""
    digest = dependency_digest(load_pyproject(root))
    missing = [name for name in (LOCK, DEV_LOCK) if not (root / name).is_file()]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        return f"{' and '.join(missing)} {verb} missing: run `make lock`, then commit the lock files."
    stale = [name for name in (LOCK, DEV_LOCK) if locked_digest((root / name).read_text()) != digest]
    if stale:
        verb = "does" if len(stale) == 1 else "do"
        return (
            f"{' and '.join(stale)} {verb} not match pyproject.toml, whose dependencies changed since "
            "the last `make lock`: run `make lock`, then commit the lock files with pyproject.toml."
        )
    return None


def uv_executable() -> str:
    """uv next to this Python (``.venv/bin/uv``, installed from the dev lock), else the one on PATH."""
    beside = Path(sys.executable).parent / ("uv.exe" if os.name == "nt" else "uv")
    if beside.is_file():
        return str(beside)
    found = shutil.which("uv")
    if found is None:
        raise DepsError("uv is not installed: `make lock` and `make check-minimums` install it into .venv")
    return found


def compile_command(
    uv: str,
    pyproject: dict[str, Any],
    output: str,
    *,
    all_extras: bool,
    constraints: str | None = None,
    upgrade: bool = False,
) -> list[str]:
    """``uv pip compile`` for one lock; the build requirements come on stdin (see ``run_compile``)."""
    command = [
        uv, "pip", "compile", PYPROJECT, "-",
        "--universal", "--python-version", lowest_python(pyproject),
        "--generate-hashes", "--custom-compile-command", "make lock",
        "--quiet", "--output-file", output,
    ]  # fmt: skip
    if all_extras:
        command.append("--all-extras")
    if constraints is not None:
        command += ["--constraints", constraints]
    if upgrade:
        command.append("--upgrade")
    return command


def run_compile(command: list[str], pyproject: dict[str, Any], root: Path) -> None:
    stdin = "".join(f"{requirement}\n" for requirement in build_requires(pyproject))
    subprocess.run(command, cwd=root, input=stdin, text=True, check=True)  # noqa: S603


def lock(root: Path, *, upgrade: bool = False) -> None:
    pyproject = load_pyproject(root)
    uv = uv_executable()
    run_compile(compile_command(uv, pyproject, DEV_LOCK, all_extras=True, upgrade=upgrade), pyproject, root)
    run_compile(compile_command(uv, pyproject, LOCK, all_extras=False, constraints=DEV_LOCK), pyproject, root)
    digest = dependency_digest(pyproject)
    for name in (DEV_LOCK, LOCK):
        path = root / name
        path.write_text(stamp(path.read_text(), digest))
    print(f"Wrote {DEV_LOCK} and {LOCK}: commit them with pyproject.toml.")


def _canonical_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise DepsError(f"cannot read the package name in {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def direct_requirements(pyproject: dict[str, Any]) -> list[str]:
    project = pyproject["project"]
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return requirements + build_requires(pyproject)


def minimums(root: Path) -> None:
    """Raise DepsError naming the step that fails with the lowest allowed versions."""
    pyproject = load_pyproject(root)
    uv = uv_executable()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dscgg-minimums-") as tmp:
        venv = Path(tmp) / "venv"
        bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
        python = str(bin_dir / "python")
        env = {**os.environ, "VIRTUAL_ENV": str(venv), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        env.pop("PYTHONPATH", None)

        listed = False

        def step(what: str, command: list[str], *, stdin: str | None = None) -> None:
            result = subprocess.run(command, cwd=root, env=env, input=stdin, text=True, check=False)  # noqa: S603
            if result.returncode != 0:
                raise DepsError(
                    f"{what} failed with the lowest versions pyproject.toml allows"
                    f"{' (listed above)' if listed else ''}: raise that dependency's minimum in "
                    "pyproject.toml and run `make lock`, or make the code work with it."
                )

        step("creating the venv", [uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
        step(
            "installing the lowest allowed versions",
            [uv, "pip", "install", "--quiet", "--python", python, "--resolution", "lowest-direct",
             "-r", PYPROJECT, "--all-extras", *build_requires(pyproject)],
        )  # fmt: skip
        step(
            "installing the project",
            [uv, "pip", "install", "--quiet", "--python", python, "--no-deps", "--no-build-isolation",
             "--editable", "."],
        )  # fmt: skip
        listing = subprocess.run(  # noqa: S603
            [uv, "pip", "list", "--python", python, "--format", "json"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        installed = {_canonical_name(p["name"]): p["version"] for p in json.loads(listing.stdout)}
        names = sorted({_canonical_name(r) for r in direct_requirements(pyproject)})
        print("check-minimums: " + ", ".join(f"{name} {installed.get(name, '?')}" for name in names))
        listed = True

        step("importing every module of bot and cogs", [python, "-c", _IMPORT_EVERY_MODULE])
        step("ruff check", [str(bin_dir / "ruff"), "check", "--no-cache", "--quiet", "."])
        step(
            "ruff format --check", [str(bin_dir / "ruff"), "format", "--check", "--no-cache", "--quiet", "."]
        )
        step("mypy", [str(bin_dir / "mypy"), "--cache-dir", str(Path(tmp) / "mypy")])
        step(
            "resolving the lock with uv's minimum",
            compile_command(str(bin_dir / "uv"), pyproject, str(Path(tmp) / "lock"), all_extras=True),
            stdin="".join(f"{requirement}\n" for requirement in build_requires(pyproject)),
        )
        step("the smoke tests", [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SMOKE_TESTS])
    print(f"check-minimums: ok in {time.monotonic() - started:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.deps", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    lock_parser = commands.add_parser("lock", help="write requirements.lock and requirements-dev.lock")
    lock_parser.add_argument("--upgrade", action="store_true", help="move every pin to its newest version")
    commands.add_parser("check", help="fail when pyproject.toml's dependencies changed since the last lock")
    commands.add_parser("minimums", help="run the checks with the lowest allowed versions")
    args = parser.parse_args(argv)
    try:
        if args.command == "lock":
            lock(ROOT, upgrade=args.upgrade)
        elif args.command == "check":
            problem = check(ROOT)
            if problem is not None:
                raise DepsError(problem)
        else:
            minimums(ROOT)
    except DepsError as error:
        print(f"{parser.prog} {args.command}: {error}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print(
            f"{parser.prog} {args.command}: {error.cmd[0]} failed (exit code {error.returncode})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
