"""The dsc.gg v2 REST client: no Discord, no database."""

from bot.dscgg import deadline
from bot.dscgg.client import DEFAULT_BASE_URL, DEFAULT_USER_AGENT, UNSET, DscggClient, UnsetType
from bot.dscgg.errors import (
    ERRORS_BY_CODE,
    APIError,
    BadRequest,
    DeadlineExceeded,
    DscggError,
    InvalidKey,
    LinkTaken,
    NotFound,
    OwnerBlacklisted,
    OwnerMismatch,
    PasswordProtected,
    RateLimited,
    Unavailable,
    UnknownAPIError,
    VersionDeprecated,
    WhitelistOnly,
)
from bot.dscgg.models import App, Link, LinkMeta, LinkStats, LinkType, User
from bot.dscgg.ratelimit import DEFAULT_LIMITS, Endpoint, RateLimiter

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_LIMITS",
    "DEFAULT_USER_AGENT",
    "ERRORS_BY_CODE",
    "UNSET",
    "APIError",
    "App",
    "BadRequest",
    "DeadlineExceeded",
    "DscggClient",
    "DscggError",
    "Endpoint",
    "InvalidKey",
    "Link",
    "LinkMeta",
    "LinkStats",
    "LinkTaken",
    "LinkType",
    "NotFound",
    "OwnerBlacklisted",
    "OwnerMismatch",
    "PasswordProtected",
    "RateLimited",
    "RateLimiter",
    "Unavailable",
    "UnknownAPIError",
    "UnsetType",
    "User",
    "VersionDeprecated",
    "WhitelistOnly",
    "deadline",
]
