"""Parsing dsc.gg payloads, including the oddities of peers.md (d) 13."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from bot.dscgg import UNSET, App, Link, LinkType, User

BIG_SNOWFLAKE = "1152921504606846977"  # 2**60 + 1: a float would round it


def test_owner_snowflake_above_2_53_is_exact() -> None:
    link = Link.model_validate({"id": "x", "owner": BIG_SNOWFLAKE})
    assert link.owner_id == 2**60 + 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_600_000_000_000, datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC)),  # milliseconds, as documented
        (1_600_000_000, datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC)),  # seconds, tolerated
        ("1600000000000", datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC)),
        ("2020-09-13T12:26:40Z", datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC)),
        (1_600_000_000_500.0, datetime(2020, 9, 13, 12, 26, 40, 500_000, tzinfo=UTC)),
        (None, None),
        (0, None),
        ("", None),
    ],
)
def test_timestamps_become_aware_utc(value: object, expected: datetime | None) -> None:
    link = Link.model_validate({"id": "x", "created_at": value, "bumped_at": value})
    assert link.created_at == expected
    assert link.bumped_at == expected
    if expected is not None:
        assert link.created_at is not None
        assert link.created_at.tzinfo is not None


@pytest.mark.parametrize(
    ("meta", "color"),
    [
        (None, None),
        ({"color": None}, None),
        ({"color": ""}, None),
        ({"color": "#FFF"}, "#FFF"),
        ({"color": "ff0000"}, "ff0000"),
        ({"color": 0xFF0000}, "#FF0000"),
        ({"color": 255}, "#0000FF"),
    ],
)
def test_meta_and_color_oddities(meta: object, color: str | None) -> None:
    payload: dict[str, object] = {"id": "x"}
    if meta is not None:
        payload["meta"] = meta
    link = Link.model_validate(payload)
    assert link.meta.color == color


def test_missing_meta_gives_empty_meta_and_empty_texts_are_none() -> None:
    assert Link.model_validate({"id": "x"}).meta.title is None
    link = Link.model_validate({"id": "x", "meta": {"title": "", "description": "hello", "saying": None}})
    assert (link.meta.title, link.meta.description, link.meta.saying) == (None, "hello", None)


def test_full_payload_with_unknown_fields_and_flags() -> None:
    link = Link.model_validate(
        {
            "id": "cool",
            "owner": "123",
            "redirect": "https://example.com",
            "domain": "dsc.gg",
            "type": "link",
            "created_at": 1_600_000_000_000,
            "bumped_at": None,
            "unlisted": True,
            "disabled": True,
            "editors": [1, 2],
            "something_new": {"a": 1},
            "meta": {"title": "T", "extra": "ignored"},
        }
    )
    assert link.type == LinkType.LINK
    assert (link.unlisted, link.disabled) == (True, True)
    assert link.bumped_at is None
    assert link.stats is None
    assert not hasattr(link, "editors")


def test_domain_is_kept_for_the_short_url() -> None:
    assert Link.model_validate({"id": "x", "domain": "discord.link"}).short_url == "https://discord.link/x"
    assert Link.model_validate({"id": "x", "domain": None}).short_url == "https://dsc.gg/x"


def test_stats_only_when_present() -> None:
    link = Link.model_validate({"id": "x", "stats": {"clicks": 3, "unique_clicks": None}})
    assert link.stats is not None
    assert (link.stats.clicks, link.stats.unique_clicks) == (3, 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("false", False), ("0", False), ("no", False), (0, False), ("true", True), ("1", True), (1, True)],
)
def test_flags_sent_as_text_or_numbers_mean_what_they_say(value: object, expected: bool) -> None:
    link = Link.model_validate({"id": "x", "unlisted": value, "disabled": value})
    assert (link.unlisted, link.disabled) == (expected, expected)
    assert User.model_validate({"id": "1", "blacklisted": value}).blacklisted is expected


@pytest.mark.parametrize("value", ["maybe", 2, [1], {}])
def test_flags_that_mean_nothing_are_rejected(value: object) -> None:
    with pytest.raises(ValidationError):
        Link.model_validate({"id": "x", "disabled": value})


@pytest.mark.parametrize("clicks", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_counts_are_rejected(clicks: float) -> None:
    with pytest.raises(ValidationError):
        Link.model_validate({"id": "x", "stats": {"clicks": clicks}})


def test_null_flags_and_owner() -> None:
    link = Link.model_validate({"id": "x", "owner": None, "unlisted": None, "disabled": None})
    assert (link.owner_id, link.unlisted, link.disabled) == (None, False, False)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"id": None},
        {"id": "x", "owner": "not-a-number"},
        {"id": "x", "owner": 1.5},
        {"id": "x", "created_at": 10**30},
        {"id": "x", "created_at": float("inf")},
        {"id": "x", "created_at": [1]},
        {"id": "x", "stats": {"clicks": [1]}},
        {"id": "x", "meta": "not an object"},
    ],
)
def test_unusable_link_payloads_are_rejected(payload: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Link.model_validate(payload)


def test_user() -> None:
    user = User.model_validate(
        {
            "id": BIG_SNOWFLAKE,
            "verified": True,
            "premium": False,
            "joined_at": 1_600_000_000_000,
            "staff": True,
        }
    )
    assert user.id == 2**60 + 1
    assert user.verified
    assert not user.premium
    assert not user.blacklisted
    assert user.joined_at == datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC)


def test_app_key_is_secret() -> None:
    app = App.model_validate({"id": 42, "owner": "7", "verified": True, "key": "sekrit-app-key"})
    assert app.id == "42"
    assert app.owner_id == 7
    assert app.key is not None
    assert app.key.get_secret_value() == "sekrit-app-key"
    for text in (repr(app), str(app), app.model_dump_json(), repr(app.model_dump())):
        assert "sekrit-app-key" not in text
    assert App.model_validate({"id": "a", "owner_id": "8"}).owner_id == 8
    assert App.model_validate({"id": "a"}).key is None


def test_models_are_immutable() -> None:
    link = Link.model_validate({"id": "x"})
    with pytest.raises(ValidationError):
        link.slug = "y"  # type: ignore[misc]


def test_unset_is_a_recognisable_singleton() -> None:
    assert repr(UNSET) == "UNSET"
    assert UNSET is not None
