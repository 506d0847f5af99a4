"""Typed views of dsc.gg v2 payloads.

The models are lenient on input because the API is loosely specified: unknown fields (``editors``,
``staff``) are ignored, unset values come back as ``None``, timestamps may be epoch milliseconds or
seconds, and snowflakes arrive as strings longer than a float can hold exactly.
"""

from __future__ import annotations

import enum
import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    SecretStr,
    StrictBool,
)


class LinkType(enum.StrEnum):
    """What a link points at. ``link`` is accepted by the API although the docs list only three."""

    SERVER = "server"
    BOT = "bot"
    TEMPLATE = "template"
    LINK = "link"


# Plain validators: each function checks and converts on its own, sparing pydantic a second pass.
# Below this an epoch value is taken as seconds: 1e11 s is the year 5138, 1e11 ms is March 1973.
_SECONDS_CUTOFF = 100_000_000_000
_MILLISECONDS_MAX = 100_000_000_000_000  # the year 5138 in milliseconds


def _to_datetime(value: Any) -> datetime | None:
    """Epoch milliseconds (seconds tolerated), ISO 8601 strings or None, as an aware UTC datetime."""
    if type(value) is int and _SECONDS_CUTOFF <= value < _MILLISECONDS_MAX:  # the documented case, first
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        stripped = value.strip()
        try:
            value = float(stripped)
        except ValueError:
            parsed = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if not isinstance(value, int | float):
        raise ValueError("timestamp must be a number, an ISO 8601 string or null")
    if value <= 0:
        # 0 is what an unset timestamp looks like in a JavaScript backend.
        return None
    seconds = value if abs(value) < _SECONDS_CUTOFF else value / 1000
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError) as error:
        raise ValueError("timestamp out of range") from error


def _to_snowflake(value: Any) -> int | None:
    """A Discord id sent as a string (exact above 2**53) or a number; empty means unset."""
    if value is None or value == "":
        return None
    if type(value) is int:
        return value
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()):
        raise ValueError("snowflake must be a string of digits")
    return int(value)


def _to_required_snowflake(value: Any) -> int:
    snowflake = _to_snowflake(value)
    if snowflake is None:
        raise ValueError("an id is required")
    return snowflake


def _to_optional_text(value: Any) -> str | None:
    """Meta texts: empty strings mean "not set"; numbers are tolerated and turned into text."""
    if type(value) is str:
        return value or None
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected text")
    if isinstance(value, int | float):
        return str(value)
    return value if isinstance(value, str) else None


def _to_color(value: Any) -> str | None:
    """Colours arrive as ``#rrggbb``, ``rrggbb``, an integer or null; kept as sent, ints as ``#RRGGBB``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"#{value & 0xFFFFFF:06X}"
    return _to_optional_text(value)


def _to_id_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise ValueError("id must be a non-empty string or an integer")
    return str(value)


def _null_is_false(value: bool | None) -> bool:
    return value is True


def _to_int(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("expected a number")
    if isinstance(value, float) and not math.isfinite(value):
        # JSON's Infinity, NaN or 1e400: int() would raise OverflowError, which pydantic passes on.
        raise ValueError("expected a finite number")
    return int(value)


# The outer "| None" lets pydantic-core answer a null itself, without calling the function, which
# would return None for it anyway. A flag that is already a bool is taken as it is, likewise; anything
# else follows pydantic's lax rules ("false", "0", 0 and "no" are False; "maybe" is refused), and
# null means False.
Timestamp = Annotated[datetime | None, BeforeValidator(_to_datetime)] | None
Snowflake = Annotated[int | None, PlainValidator(_to_snowflake)]
OptionalText = Annotated[str | None, PlainValidator(_to_optional_text)] | None
Flag = Annotated[
    StrictBool | Annotated[bool | None, AfterValidator(_null_is_false)], Field(union_mode="left_to_right")
]
Count = Annotated[int, PlainValidator(_to_int)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class LinkMeta(_Model):
    title: OptionalText = None
    description: OptionalText = None
    color: Annotated[str | None, PlainValidator(_to_color)] | None = None
    image: OptionalText = None
    saying: OptionalText = None


def _to_meta(value: Any) -> Any:
    return LinkMeta() if value is None else value


class LinkStats(_Model):
    """Click counts, only present when the link was fetched with ``with_stats=True``."""

    clicks: Count = 0
    unique_clicks: Count = 0


class Link(_Model):
    slug: str = Field(validation_alias=AliasChoices("id", "slug"))
    owner_id: Snowflake = Field(default=None, validation_alias=AliasChoices("owner", "owner_id"))
    redirect: str = ""
    domain: Annotated[str, BeforeValidator(lambda value: value or "dsc.gg")] = "dsc.gg"
    # Kept as text: the API has already grown one type ("link") beyond its documentation.
    type: str = LinkType.SERVER.value
    created_at: Timestamp = None
    bumped_at: Timestamp = None
    unlisted: Flag = False
    disabled: Flag = False
    meta: Annotated[LinkMeta, BeforeValidator(_to_meta)] = Field(default_factory=LinkMeta)
    stats: LinkStats | None = None

    @property
    def short_url(self) -> str:
        return f"https://{self.domain}/{self.slug}"


class User(_Model):
    id: Annotated[int, PlainValidator(_to_required_snowflake)]
    verified: Flag = False
    premium: Flag = False
    blacklisted: Flag = False
    joined_at: Timestamp = None


class App(_Model):
    id: Annotated[str, PlainValidator(_to_id_text)]
    owner_id: Snowflake = Field(default=None, validation_alias=AliasChoices("owner", "owner_id"))
    created_at: Timestamp = None
    #: Whitelisted apps are the "verified" ones.
    verified: Flag = False
    #: Only returned to the app's owner. A secret: hidden from repr and str, never logged.
    key: SecretStr | None = Field(default=None, repr=False)
