"""Local validation of what admins type, before anything is sent to dsc.gg.

Pure functions, no network, no words. Each one returns the normalized value or raises
``InvalidInput(field, problem, **details)``: ``problem`` (a ``bot.failures.Invalid``) says what is
wrong and ``details`` what the sentence needs (the offending character, the length, the host…);
``bot.errors`` turns it into a sentence for the admin, with the next step where there is one.

A link's options are validated in one place for every way in (``/link``, the HTTP API, the
dashboard): ``new_link_options`` makes a ``NewLink`` for ``LinkService.create`` and
``link_change_options`` a ``LinkChanges`` for ``LinkService.edit``. Callers only collect the raw
values (options, a JSON body, a form) and say which fields to take off the link.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qs, urlsplit, urlunsplit

from bot.dscgg.models import LinkType
from bot.failures import Invalid, InvalidInput, NothingToChange

__all__ = [
    "DESCRIPTION_MAX",
    "IMAGE_MAX",
    "LINK_FIELDS",
    "PASSWORD_MAX",
    "QUERY_MAX",
    "REDIRECT_MAX",
    "REMOVABLE",
    "SLUG_MAX",
    "TITLE_MAX",
    "LinkChanges",
    "MetaOptions",
    "NewLink",
    "check_edit_options",
    "link_change_options",
    "new_link_options",
    "normalize_slug",
    "parse_color",
    "validate_description",
    "validate_image",
    "validate_meta_options",
    "validate_password",
    "validate_query",
    "validate_redirect",
    "validate_title",
    "validate_type",
]

#: dsc.gg's slug cap, as far as anyone outside dsc.gg knows (its own tools use 120).
SLUG_MAX = 120
REDIRECT_MAX = 2000
IMAGE_MAX = 2000
TITLE_MAX = 256
DESCRIPTION_MAX = 2000
PASSWORD_MAX = 100
QUERY_MAX = 100

_SLUG_RE = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_DSCGG_HOSTS = frozenset({"dsc.gg", "www.dsc.gg"})
# A first path segment that looks like a host name ("example.com", "discord.gg:443").
_HOSTLIKE_RE = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\.?(?::\d+)?", re.ASCII)
# A scheme written without "//" ("javascript:alert(1)", "data:text/html,..."), not "host:port".
_BARE_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(?!\d)", re.ASCII)
_HEX_COLOR_RE = re.compile(r"#?([0-9A-Fa-f]{6}|[0-9A-Fa-f]{3})", re.ASCII)
_CODE_RE = r"[A-Za-z0-9_-]{1,100}"

_DISCORD_APP_HOSTS = frozenset(
    f"{sub}{base}" for sub in ("", "www.", "canary.", "ptb.") for base in ("discord.com", "discordapp.com")
)
_SERVER_PATH_RE = re.compile(rf"/invite/{_CODE_RE}/?", re.ASCII)
_INVITE_SHORT_PATH_RE = re.compile(rf"/{_CODE_RE}/?", re.ASCII)
_TEMPLATE_PATH_RE = re.compile(rf"/template/{_CODE_RE}/?", re.ASCII)
_BOT_PATH_RE = re.compile(r"(?:/api)?/oauth2/authorize/?", re.ASCII)
_SNOWFLAKE_RE = re.compile(r"[0-9]{15,21}", re.ASCII)
_BOT_SCOPES = frozenset({"bot", "applications.commands"})

_KINDS = ("server", "bot", "template")


def _first_bad_char(text: str, allowed: re.Pattern[str]) -> str | None:
    for char in text:
        if not allowed.fullmatch(char):
            return char
    return None


def _unwrap(raw: str) -> str:
    """Strip surrounding whitespace and the <...> that Discord users put around links."""
    text = raw.strip()
    if len(text) >= 2 and text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    return text


def normalize_slug(raw: str) -> str:
    """Reduce ``name``, ``dsc.gg/name`` or ``https://dsc.gg/name`` (any case, ``www.``, ``<...>``,
    trailing ``/``, query or fragment) to ``name``; refuse anything else."""
    text = _unwrap(raw)
    if not text:
        raise InvalidInput("slug", Invalid.SLUG_EMPTY)
    # Before any URL parsing: urlsplit silently drops TAB, CR and LF ("dsc.gg/a\tb" would become "ab").
    for char in text:
        if char.isspace() or not char.isprintable():
            raise InvalidInput("slug", Invalid.SLUG_CHAR, char=char)

    has_scheme = "://" in text
    first_segment = text.split("/", 1)[0]
    if has_scheme or ("/" in text and _HOSTLIKE_RE.fullmatch(first_segment)) or text.lower() in _DSCGG_HOSTS:
        text = _slug_from_url(text if has_scheme else f"https://{text}")

    if len(text) > SLUG_MAX:
        raise InvalidInput("slug", Invalid.SLUG_TOO_LONG, length=len(text), limit=SLUG_MAX)
    bad = _first_bad_char(text, _SLUG_RE)
    if bad is not None:
        raise InvalidInput("slug", Invalid.SLUG_CHAR, char=bad)
    return text


def _slug_from_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        netloc = parts.netloc.lower()
    except ValueError:
        raise InvalidInput("slug", Invalid.SLUG_UNREADABLE) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput("slug", Invalid.SLUG_NOT_WEB)
    if netloc not in _DSCGG_HOSTS:
        if host in _DSCGG_HOSTS:
            raise InvalidInput("slug", Invalid.SLUG_NOT_PLAIN)
        raise InvalidInput("slug", Invalid.SLUG_OTHER_HOST, host=host or netloc)
    path = parts.path.strip("/")
    if not path:
        raise InvalidInput("slug", Invalid.SLUG_NO_NAME)
    return path


def _infer_kind(parts: SplitResult) -> str | None:
    host = parts.netloc.lower()
    path = parts.path
    if host == "discord.gg" and _INVITE_SHORT_PATH_RE.fullmatch(path):
        return "server"
    if host == "discord.new" and _INVITE_SHORT_PATH_RE.fullmatch(path):
        return "template"
    if host in _DISCORD_APP_HOSTS:
        if _SERVER_PATH_RE.fullmatch(path):
            return "server"
        if _TEMPLATE_PATH_RE.fullmatch(path):
            return "template"
        if _BOT_PATH_RE.fullmatch(path):
            _check_bot_invite(parts.query)
            return "bot"
    return None


def _check_bot_invite(query: str) -> None:
    """A bot invite adds a bot to a server: one client_id, a scope (if any) with ``bot`` or
    ``applications.commands``, and no sign-in flow (``redirect_uri``/``response_type``) that would
    hand a visitor's account to another site."""
    params = parse_qs(query, keep_blank_values=True)
    client_ids = params.get("client_id", [])
    if len(client_ids) != 1 or not _SNOWFLAKE_RE.fullmatch(client_ids[0]):
        raise InvalidInput("redirect", Invalid.BOT_INVITE_CLIENT_ID)
    sign_in = [name for name in ("redirect_uri", "response_type") if name in params]
    if sign_in:
        raise InvalidInput("redirect", Invalid.BOT_INVITE_SIGN_IN, param=sign_in[0])
    if "scope" in params:
        scopes = {scope for value in params["scope"] for scope in value.split()}
        if not scopes & _BOT_SCOPES:
            raise InvalidInput("redirect", Invalid.BOT_INVITE_SCOPE)


def validate_type(raw: LinkType | str) -> LinkType:
    """One of the types a link may be given: server, bot or template."""
    wanted = str(getattr(raw, "value", raw)).lower()
    if wanted not in _KINDS:
        raise InvalidInput("type", Invalid.TYPE_UNKNOWN)
    return LinkType(wanted)


def validate_redirect(raw: str, type: LinkType | str | None = None) -> tuple[str, LinkType]:
    """Check a redirect and return it as an https URL with the link type it implies.

    ``type`` (when given) must agree with the redirect; when omitted it is inferred.
    """
    text = _unwrap(raw)
    if not text:
        raise InvalidInput("redirect", Invalid.REDIRECT_EMPTY)
    if len(text) > REDIRECT_MAX:
        raise InvalidInput("redirect", Invalid.TOO_LONG, length=len(text), limit=REDIRECT_MAX)
    for char in text:
        if char.isspace() or not char.isprintable() or not char.isascii():
            raise InvalidInput("redirect", Invalid.REDIRECT_CHAR, char=char)

    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
    else:
        bare = _BARE_SCHEME_RE.match(text)
        scheme = bare.group(1).lower() if bare else ""
        if not scheme:
            text = f"https://{text}"
            scheme = "https"
    if scheme not in ("http", "https"):
        raise InvalidInput("redirect", Invalid.REDIRECT_SCHEME, scheme=scheme)

    try:
        parts = urlsplit(text)
        parts = parts._replace(scheme="https", netloc=parts.netloc.lower())
    except ValueError:
        raise InvalidInput("redirect", Invalid.REDIRECT_UNREADABLE) from None

    kind = _infer_kind(parts)
    if kind is None:
        raise InvalidInput("redirect", Invalid.REDIRECT_NOT_DISCORD)
    url = urlunsplit(parts)
    if len(url) > REDIRECT_MAX:  # "https://" added or http upgraded: the URL sent is what counts
        raise InvalidInput("redirect", Invalid.TOO_LONG_AS_HTTPS, length=len(url), limit=REDIRECT_MAX)

    if type is not None:
        wanted = validate_type(type)
        if wanted != kind:
            raise InvalidInput("type", Invalid.TYPE_MISMATCH, wanted=wanted.value, kind=kind)
    return url, LinkType(kind)


def parse_color(raw: str) -> str:
    """``#RRGGBB``, ``RRGGBB``, ``#RGB`` or ``RGB`` → ``#rrggbb``."""
    text = raw.strip()
    match = _HEX_COLOR_RE.fullmatch(text)
    if match is None:
        raise InvalidInput("color", Invalid.COLOR_FORMAT)
    digits = match.group(1).lower()
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return f"#{digits}"


#: Bidi embeddings/overrides (U+202A-202E), bidi isolates (U+2066-2069), zero-width space/joiners
#: (U+200B-200D) and the byte order mark (U+FEFF): they hide or reorder what an embed shows.
_INVISIBLE_FORMATTING = frozenset(
    [
        *map(chr, range(0x202A, 0x202F)),
        *map(chr, range(0x2066, 0x206A)),
        "\u200b",
        "\u200c",
        "\u200d",
        "\ufeff",
    ]
)


def _text(field: str, raw: str, limit: int, *, multiline: bool) -> str:
    text = raw.strip()
    if not text:
        raise InvalidInput(field, Invalid.EMPTY)
    if len(text) > limit:
        raise InvalidInput(field, Invalid.TOO_LONG, length=len(text), limit=limit)
    for char in text:
        if multiline and char == "\n":
            continue
        if unicodedata.category(char) == "Cc":
            raise InvalidInput(field, Invalid.CONTROL_CHAR, char=char)
        if char in _INVISIBLE_FORMATTING:
            raise InvalidInput(field, Invalid.INVISIBLE_CHAR, char=char)
    return text


def validate_title(raw: str) -> str:
    return _text("title", raw, TITLE_MAX, multiline=False)


def validate_description(raw: str) -> str:
    return _text("description", raw, DESCRIPTION_MAX, multiline=True)


def validate_password(raw: str) -> str:
    """Kept as typed (no stripping): a password is compared character for character."""
    if not raw or raw.isspace():
        raise InvalidInput("password", Invalid.PASSWORD_EMPTY)
    if len(raw) > PASSWORD_MAX:
        raise InvalidInput("password", Invalid.PASSWORD_TOO_LONG, limit=PASSWORD_MAX)
    return raw


#: Every field of a link an admin sets, in option order.
LINK_FIELDS = ("redirect", "type", "title", "description", "image", "color", "unlisted", "password")
#: The fields ``/link edit`` can take off a link, each with a ``remove_<field>`` option (option order).
REMOVABLE = ("title", "description", "image", "color", "password")


def check_edit_options(slug: str, given: Mapping[str, object], removed: Collection[str]) -> None:
    """``/link edit`` needs something to change, and cannot both set and remove one field.

    ``given`` maps every optional field to its value (None = not given); ``removed`` names the fields
    whose ``remove_<field>`` option is true.
    """
    for field in REMOVABLE:
        if field in removed and given.get(field) is not None:
            raise InvalidInput(f"remove_{field}", Invalid.REMOVE_CONFLICT, other=field)
    if not removed and all(value is None for value in given.values()):
        raise NothingToChange(slug)


def validate_image(raw: str) -> str:
    """The embed image must be a full https:// address."""
    text = _unwrap(raw)
    if not text:
        raise InvalidInput("image", Invalid.EMPTY)
    if len(text) > IMAGE_MAX:
        raise InvalidInput("image", Invalid.TOO_LONG, length=len(text), limit=IMAGE_MAX)
    for char in text:
        if char.isspace() or not char.isprintable() or not char.isascii():
            raise InvalidInput("image", Invalid.IMAGE_CHAR, char=char)
    refusal = InvalidInput("image", Invalid.IMAGE_NOT_HTTPS)
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
    except ValueError:
        raise refusal from None
    if parts.scheme.lower() != "https" or "." not in host or parts.username is not None:
        raise refusal
    return urlunsplit(parts._replace(scheme="https"))


def validate_query(raw: str) -> str:
    text = raw.strip()
    if not text:
        raise InvalidInput("query", Invalid.QUERY_EMPTY)
    if len(text) > QUERY_MAX:
        raise InvalidInput("query", Invalid.TOO_LONG, length=len(text), limit=QUERY_MAX)
    bad = next((c for c in text if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise InvalidInput("query", Invalid.QUERY_CHAR, char=bad)
    return text


@dataclass(frozen=True, slots=True)
class MetaOptions:
    """The optional fields ``/link create`` and ``/link edit`` share, validated; None = not given."""

    title: str | None = None
    description: str | None = None
    image: str | None = None
    color: str | None = None
    password: str | None = None


def validate_meta_options(
    *,
    title: str | None,
    description: str | None,
    image: str | None,
    color: str | None,
    password: str | None,
) -> MetaOptions:
    """Validate each optional field that was given; raises InvalidInput for the first bad one."""
    return MetaOptions(
        title=validate_title(title) if title is not None else None,
        description=validate_description(description) if description is not None else None,
        image=validate_image(image) if image is not None else None,
        color=parse_color(color) if color is not None else None,
        password=validate_password(password) if password is not None else None,
    )


@dataclass(frozen=True, slots=True)
class NewLink:
    """A link to create, validated (``new_link_options``)."""

    slug: str
    redirect: str
    #: The type given, else the one the redirect implies (they agree).
    type: LinkType
    meta: MetaOptions = MetaOptions()
    unlisted: bool | None = None


@dataclass(frozen=True, slots=True)
class LinkChanges:
    """What an edit changes, validated (``link_change_options``): each field given (None = stays as it
    is) and the fields taken off the link. Never empty, never a field both set and removed."""

    slug: str
    redirect: str | None = None
    #: What the new redirect is (set exactly when ``redirect`` is).
    redirect_type: LinkType | None = None
    #: The type asked for: the new redirect's, else the link's current redirect must be of this type
    #: (the service checks that one, it knows the link).
    type: LinkType | None = None
    meta: MetaOptions = MetaOptions()
    unlisted: bool | None = None
    #: The fields taken off the link (sent as null), in ``REMOVABLE`` order.
    removed: tuple[str, ...] = ()


def new_link_options(
    *,
    slug: str,
    redirect: str,
    type: LinkType | str | None = None,
    title: str | None = None,
    description: str | None = None,
    image: str | None = None,
    color: str | None = None,
    unlisted: bool | None = None,
    password: str | None = None,
) -> NewLink:
    """The options of a new link as typed (None = not given), validated in the order of the options:
    the slug, the redirect (with the type, worked out when not given), then the embed's fields."""
    name = normalize_slug(slug)
    target, kind = validate_redirect(redirect, type)
    meta = validate_meta_options(
        title=title, description=description, image=image, color=color, password=password
    )
    return NewLink(slug=name, redirect=target, type=kind, meta=meta, unlisted=unlisted)


def link_change_options(
    *,
    slug: str,
    redirect: str | None = None,
    type: LinkType | str | None = None,
    title: str | None = None,
    description: str | None = None,
    image: str | None = None,
    color: str | None = None,
    unlisted: bool | None = None,
    password: str | None = None,
    removed: Collection[str] = (),
) -> LinkChanges:
    """The changes of an edit as typed (None = not given) and the fields to take off the link.

    Refused, in this order: a bad slug; removing a field that cannot be removed (``NOT_REMOVABLE``:
    redirect, type, unlisted); setting and removing one field (``REMOVE_CONFLICT``, on
    ``remove_<field>``); nothing to change (``NothingToChange``); then each value given, as for a new
    link (a type also when given without a redirect).
    """
    name = normalize_slug(slug)
    unknown = set(removed) - set(LINK_FIELDS)
    if unknown:
        raise ValueError(f"not a field of a link: {sorted(unknown)}")
    for field in LINK_FIELDS:
        if field in removed and field not in REMOVABLE:
            raise InvalidInput(field, Invalid.NOT_REMOVABLE)
    given = {
        "redirect": redirect,
        "type": type,
        "title": title,
        "description": description,
        "image": image,
        "color": color,
        "unlisted": unlisted,
        "password": password,
    }
    check_edit_options(name, given, removed)
    target, kind = validate_redirect(redirect, type) if redirect is not None else (None, None)
    meta = validate_meta_options(
        title=title, description=description, image=image, color=color, password=password
    )
    return LinkChanges(
        slug=name,
        redirect=target,
        redirect_type=kind,
        type=validate_type(type) if type is not None else None,
        meta=meta,
        unlisted=unlisted,
        removed=tuple(field for field in REMOVABLE if field in removed),
    )
