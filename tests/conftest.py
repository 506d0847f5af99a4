"""Shared fixtures live in tests/fixtures/*, one module per area, registered here."""

pytest_plugins = [
    "tests.fixtures.services",  # first: tests.fixtures.storage uses it
    "tests.fixtures.dscgg",
    "tests.fixtures.storage",
    "tests.fixtures.discord",
    "tests.fixtures.bot",
    "tests.fixtures.api",
    "tests.fixtures.dashboard",
]
