"""The lock files: hash-pinned, in step with pyproject.toml, and a clear `make lock` hint when they are not.

(The minimum versions are proven by `make check-minimums`, which installs them; see tools/deps.py.)
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools import deps

REPO_ROOT = Path(__file__).resolve().parent.parent

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def pins(lock: Path) -> dict[str, tuple[str, int]]:
    """{package: (version, number of hashes)} of a lock file."""
    found: dict[str, tuple[str, int]] = {}
    name = ""
    for line in lock.read_text().splitlines():
        match = PIN.match(line)
        if match:
            name = canonicalize_name(match.group(1))
            found[name] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and name:
            version, hashes = found[name]
            found[name] = (version, hashes + 1)
        elif line and not line.startswith((" ", "#")):
            pytest.fail(f"{lock.name}: not a pinned requirement: {line!r}")
    return found


def project_copy(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name in (deps.PYPROJECT, deps.LOCK, deps.DEV_LOCK):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    return tmp_path


def edit_pyproject(root: Path, old: str, new: str) -> None:
    path = root / deps.PYPROJECT
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


# ---------------------------------------------------------------- the committed locks


def test_committed_locks_match_pyproject() -> None:
    assert deps.check(REPO_ROOT) is None


@pytest.mark.parametrize(
    ("lock", "extras"),
    [(deps.LOCK, False), (deps.DEV_LOCK, True)],
)
def test_every_dependency_is_locked_with_hashes_within_its_range(lock: str, extras: bool) -> None:
    pyproject = deps.load_pyproject(REPO_ROOT)
    locked = pins(REPO_ROOT / lock)
    wanted = list(pyproject["project"]["dependencies"]) + deps.build_requires(pyproject)
    if extras:
        for extra in pyproject["project"]["optional-dependencies"].values():
            wanted += extra

    for text in wanted:
        requirement = Requirement(text)
        version, _ = locked[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version, prereleases=True), f"{lock}: {text} but {version}"
    unhashed = [name for name, (_, hashes) in locked.items() if hashes == 0]
    assert unhashed == []


def test_runtime_lock_has_the_dev_lock_versions() -> None:
    """`make run`, the Docker image and `make test` run the same versions."""
    runtime = pins(REPO_ROOT / deps.LOCK)
    dev = pins(REPO_ROOT / deps.DEV_LOCK)
    assert {name: version for name, (version, _) in runtime.items()} == {
        name: dev[name][0] for name in runtime
    }
    assert {"pytest", "mypy", "ruff", "uv"} <= dev.keys()
    assert not {"pytest", "mypy", "ruff", "uv"} & runtime.keys()


# ---------------------------------------------------------------- pyproject.toml and the locks


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"cryptography>=42",\n', '"cryptography>=42",\n    "redis>=5",\n'),  # a new dependency
        ('"aiohttp>=3.10,<4"', '"aiohttp>=3.11,<4"'),  # a raised minimum
        ('"aiosqlite>=0.20",\n', ""),  # a dependency removed
        ('"pytest-socket>=0.7",\n', '"pytest-socket>=0.7",\n    "hypothesis>=6",\n'),  # a dev tool
        ('requires-python = ">=3.11"', 'requires-python = ">=3.12"'),
        ('requires = ["setuptools>=77"]', 'requires = ["setuptools>=80"]'),
    ],
)
def test_changed_dependencies_ask_for_make_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], old: str, new: str
) -> None:
    root = project_copy(tmp_path)
    edit_pyproject(root, old, new)
    monkeypatch.setattr(deps, "ROOT", root)

    assert deps.main(["check"]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "python -m tools.deps check: requirements.lock and requirements-dev.lock do not match "
        "pyproject.toml, whose dependencies changed since the last `make lock`: run `make lock`, then "
        "commit the lock files with pyproject.toml.\n"
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("line-length = 110", "line-length = 100"),  # a tool setting
        ('version = "0.1.0"', 'version = "0.2.0"'),
        ('"aiosqlite>=0.20",\n    "cryptography>=42",', '"cryptography >= 42",\n    "AIOSQLITE>=0.20",'),
    ],
)
def test_other_pyproject_changes_keep_the_locks(tmp_path: Path, old: str, new: str) -> None:
    root = project_copy(tmp_path)
    edit_pyproject(root, old, new)

    assert deps.check(root) is None


def test_a_missing_lock_is_named(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    (root / deps.LOCK).unlink()

    assert deps.check(root) == "requirements.lock is missing: run `make lock`, then commit the lock files."


def test_a_lock_without_the_digest_line_asks_for_make_lock(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    dev = root / deps.DEV_LOCK
    dev.write_text(
        "".join(line for line in dev.read_text().splitlines(True) if deps.DIGEST_PREFIX not in line)
    )

    problem = deps.check(root)

    assert problem is not None
    assert problem.startswith("requirements-dev.lock does not match pyproject.toml")


# ---------------------------------------------------------------- make lock

FAKE_UV = """\
import json, sys
args = sys.argv[1:]
output = args[args.index("--output-file") + 1]
with open(output, "w") as file:
    file.write("# This file was autogenerated by uv via the following command:\\n#    make lock\\n")
    file.write("aiohttp==3.14.5 \\\\\\n    --hash=sha256:" + "0" * 64 + "\\n")
with open(sys.argv[0] + ".calls", "a") as log:
    log.write(json.dumps({"args": args, "stdin": sys.stdin.read()}) + "\\n")
"""


def test_make_lock_writes_both_locks_in_step_with_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project_copy(tmp_path / "project")
    edit_pyproject(root, '"cryptography>=42",\n', '"cryptography>=42",\n    "redis>=5",\n')
    fake_uv = tmp_path / "uv"
    fake_uv.write_text(f"#!{sys.executable}\n{FAKE_UV}")
    fake_uv.chmod(0o755)
    monkeypatch.setattr(deps, "uv_executable", lambda: str(fake_uv))
    assert deps.check(root) is not None

    deps.lock(root)
    deps.lock(root)  # again: still one digest line

    assert deps.check(root) is None
    for name in (deps.LOCK, deps.DEV_LOCK):
        assert (root / name).read_text().count(deps.DIGEST_PREFIX) == 1
    dev_call, runtime_call = [json.loads(line) for line in Path(f"{fake_uv}.calls").read_text().splitlines()][
        :2
    ]
    for call in (dev_call, runtime_call):
        assert {"--universal", "--generate-hashes"} <= set(call["args"])
        assert call["args"][call["args"].index("--python-version") + 1] == "3.11"
        assert call["stdin"] == "setuptools>=77\n"  # the build backend is locked too
    assert "--all-extras" in dev_call["args"]
    assert "--all-extras" not in runtime_call["args"]
    assert runtime_call["args"][runtime_call["args"].index("--constraints") + 1] == deps.DEV_LOCK


def test_lowest_python_comes_from_requires_python() -> None:
    assert deps.lowest_python({"project": {"requires-python": ">=3.11"}}) == "3.11"
    assert deps.lowest_python({"project": {"requires-python": ">= 3.12.1, <4"}}) == "3.12"
    with pytest.raises(deps.DepsError, match="requires-python"):
        deps.lowest_python({"project": {"requires-python": "~=3.11"}})


def test_smoke_tests_of_check_minimums_exist() -> None:
    missing = [name for name in deps.SMOKE_TESTS if not (REPO_ROOT / name).is_file()]
    assert missing == []
