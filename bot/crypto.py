"""Encryption of dsc.gg API tokens at rest.

Fernet (AES-CBC + HMAC) with several keys for rotation: the first key encrypts, any key decrypts.
Fernet has no associated data, so the guild id travels inside the encrypted payload and is checked on
decryption: a ciphertext copied to another guild's row does not decrypt for that guild.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenUndecryptable(Exception):
    """A stored ciphertext cannot be turned back into a token for this guild.

    The key is missing (lost or rotated away), the ciphertext was altered, or it belongs to another
    guild. The message never contains the ciphertext or the token.
    """


class TokenCipher:
    """Encrypts and decrypts tokens bound to a guild id. ``keys`` are Fernet keys, newest first."""

    def __init__(self, keys: Sequence[str]) -> None:
        if isinstance(keys, str):
            raise TypeError("keys must be a sequence of keys, not a single string")
        if not keys:
            raise ValueError("at least one Fernet key is needed")
        fernets: list[Fernet] = []
        for index, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                # Say which key, never what it is.
                raise ValueError(f"key {index} of {len(keys)} is not a valid Fernet key") from None
        self._primary = fernets[0]
        self._all = MultiFernet(fernets)
        self._key_count = len(fernets)

    @property
    def has_older_keys(self) -> bool:
        """True while keys other than the newest are configured, i.e. a rotation is under way."""
        return self._key_count > 1

    def __repr__(self) -> str:
        return "TokenCipher(<keys hidden>)"

    def encrypt(self, guild_id: int, token: str) -> str:
        payload = json.dumps({"g": guild_id, "t": token}, separators=(",", ":")).encode("utf-8")
        return self._all.encrypt(payload).decode("ascii")

    def decrypt(self, guild_id: int, ciphertext: str) -> str:
        payload = self._open(ciphertext)
        try:
            data: Any = json.loads(payload)
        except ValueError:
            raise TokenUndecryptable("the stored token has an unknown format") from None
        if not isinstance(data, dict) or not isinstance(data.get("t"), str):
            raise TokenUndecryptable("the stored token has an unknown format")
        if data.get("g") != guild_id:
            raise TokenUndecryptable("the stored token belongs to another server")
        token: str = data["t"]
        return token

    def needs_rotation(self, ciphertext: str) -> bool:
        """True when ``ciphertext`` decrypts only with an older key; TokenUndecryptable if with none."""
        try:
            self._primary.decrypt(ciphertext.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            self._open(ciphertext)
            return True
        return False

    def rotated(self, ciphertext: str) -> str | None:
        """``ciphertext`` re-encrypted under the newest key, or None when it already is under it.

        One attempt with the newest key, then one rotation: cheaper than ``needs_rotation()`` followed
        by ``rotate()``. TokenUndecryptable if no key decrypts it.
        """
        try:
            data = ciphertext.encode("ascii")
            self._primary.decrypt(data)
        except InvalidToken:
            pass
        except UnicodeEncodeError:
            raise TokenUndecryptable(
                "the stored token cannot be decrypted with the configured keys"
            ) from None
        else:
            return None
        try:
            return self._all.rotate(data).decode("ascii")
        except InvalidToken:
            raise TokenUndecryptable(
                "the stored token cannot be decrypted with the configured keys"
            ) from None

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the newest key, keeping the payload (and so the guild binding) unchanged."""
        try:
            return self._all.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            raise TokenUndecryptable(
                "the stored token cannot be decrypted with the configured keys"
            ) from None

    def _open(self, ciphertext: str) -> bytes:
        try:
            return self._all.decrypt(ciphertext.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise TokenUndecryptable(
                "the stored token cannot be decrypted with the configured keys"
            ) from None
