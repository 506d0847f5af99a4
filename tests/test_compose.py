"""compose.yaml: the shards split over the bot processes cover every shard exactly once, and every
service that depends on another waits until it is healthy.

No YAML library is a dependency of the project, so compose.yaml is read with a small reader of the
block-style subset it is written in (anything else fails the test, so the file stays in that subset).
Where PyYAML is installed the reader is checked against it, and where ``docker compose`` (or the older
``docker-compose``) is installed, its ``config`` validates the file; no daemon is needed for that.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

COMPOSE = Path(__file__).resolve().parents[1] / "compose.yaml"
BOT_SERVICES = ("bot-a", "bot-b")


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        return [_scalar(item) for item in text[1:-1].split(",") if item.strip()]
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    if text == "":
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text[0] in "&*!|>{@`%":
        raise ValueError(f"compose.yaml uses YAML this reader does not know: {text!r}")
    return text


def read_block_yaml(text: str) -> Any:
    """Block mappings, block sequences of scalars, flow sequences of scalars, quoted or plain scalars."""
    lines = [
        (len(line) - len(line.lstrip(" ")), line.strip())
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]

    def block(index: int, indent: int) -> tuple[Any, int]:
        if lines[index][1].startswith("- "):
            items: list[Any] = []
            while index < len(lines) and lines[index][0] == indent and lines[index][1].startswith("- "):
                items.append(_scalar(lines[index][1][2:]))
                index += 1
            return items, index
        mapping: dict[str, Any] = {}
        while index < len(lines) and lines[index][0] == indent:
            key, sep, rest = lines[index][1].partition(":")
            if not sep or (rest and not rest.startswith(" ")):
                raise ValueError(f"compose.yaml line not understood: {lines[index][1]!r}")
            index += 1
            if rest.strip():
                mapping[key] = _scalar(rest)
            elif index < len(lines) and lines[index][0] > indent:
                mapping[key], index = block(index, lines[index][0])
            else:
                mapping[key] = None
        if index < len(lines) and lines[index][0] > indent:
            raise ValueError(f"compose.yaml indentation not understood at {lines[index][1]!r}")
        return mapping, index

    document, end = block(0, 0)
    assert end == len(lines)
    return document


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = read_block_yaml(COMPOSE.read_text(encoding="utf-8"))
    return document


def test_the_reader_agrees_with_pyyaml_where_it_is_installed(compose: dict[str, Any]) -> None:
    yaml = pytest.importorskip(
        "yaml", reason="PyYAML is not installed; compose.yaml read by the test's reader"
    )
    assert yaml.safe_load(COMPOSE.read_text(encoding="utf-8")) == compose


def test_two_bot_processes_split_four_shards_exactly_once(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {name for name in services if "build" in services[name]} == set(BOT_SERVICES)
    shards: list[int] = []
    for name in BOT_SERVICES:
        environment = services[name]["environment"]
        assert environment["SHARD_COUNT"] == "4"
        ids = [int(part) for part in environment["SHARD_IDS"].split(",")]
        assert len(ids) == 2, name
        shards += ids
    assert sorted(shards) == [0, 1, 2, 3]


def test_bots_share_one_database_one_limiter_and_keep_their_own_data_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    environments = [services[name]["environment"] for name in BOT_SERVICES]
    assert {env["DATABASE_URL"] for env in environments} == {
        "postgresql+asyncpg://postgres:postgres@postgres:5432/dscgg"
    }
    assert {env["REDIS_URL"] for env in environments} == {"redis://redis:6379/0"}
    volumes = [services[name]["volumes"] for name in BOT_SERVICES]
    assert all(len(v) == 1 and v[0].endswith(":/data") for v in volumes)
    assert len({v[0] for v in volumes}) == len(BOT_SERVICES)
    assert all(v[0].split(":")[0] in compose["volumes"] for v in volumes)
    assert all(services[name]["env_file"] == ".env" for name in BOT_SERVICES)


def test_databases_have_health_checks_and_dependents_wait_until_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    dependents = {name: s["depends_on"] for name, s in services.items() if "depends_on" in s}
    assert set(dependents) == set(BOT_SERVICES)
    for name, depends_on in dependents.items():
        assert set(depends_on) == {"postgres", "redis"}, name
        for needed, how in depends_on.items():
            assert how == {"condition": "service_healthy"}, (name, needed)
            assert "healthcheck" in services[needed]


def _compose_command() -> list[str] | None:
    """``docker compose`` (the plugin), else the older standalone ``docker-compose``, else None."""
    docker = shutil.which("docker")
    if (
        docker is not None
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone is not None else None


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither the docker compose plugin nor docker-compose is installed")
    # A copy beside the .env it reads (the operator's .env is not in the repository).
    shutil.copy(COMPOSE, tmp_path / "compose.yaml")
    (tmp_path / ".env").write_text("DISCORD_TOKEN=x\nTOKEN_ENCRYPTION_KEYS=k\n", encoding="utf-8")
    done = subprocess.run(
        [*command, "config", "--services"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == ["bot-a", "bot-b", "postgres", "redis"]

    # Without TOKEN_ENCRYPTION_KEYS the processes could not read each other's stored tokens: refused.
    (tmp_path / ".env").write_text("DISCORD_TOKEN=x\n", encoding="utf-8")
    done = subprocess.run(
        [*command, "config", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "set TOKEN_ENCRYPTION_KEYS in .env" in done.stderr
