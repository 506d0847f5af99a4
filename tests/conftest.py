"""Shared fixtures live in tests/fixtures/*, one module per area, registered here."""

pytest_plugins = [
    "tests.fixtures.dscgg",
    "tests.fixtures.storage",
    "tests.fixtures.discord",
    "tests.fixtures.bot",
    "tests.fixtures.services",
    "tests.fixtures.api",
    "tests.fixtures.dashboard",
]
