"""TokenCipher: tokens round-trip, stay bound to their guild, and survive key rotation."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from bot.crypto import TokenCipher, TokenUndecryptable

GUILD = 111111111111111111
OTHER_GUILD = 222222222222222222
TOKEN = "dscgg-api-token-ABCD1234"


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


def test_round_trip_and_ciphertext_hides_the_token() -> None:
    cipher = TokenCipher([new_key()])
    ciphertext = cipher.encrypt(GUILD, TOKEN)
    assert TOKEN not in ciphertext
    assert cipher.decrypt(GUILD, ciphertext) == TOKEN
    # Fresh IV every time: equal tokens do not give equal ciphertexts.
    assert cipher.encrypt(GUILD, TOKEN) != ciphertext


def test_unicode_token_round_trips() -> None:
    cipher = TokenCipher([new_key()])
    assert cipher.decrypt(GUILD, cipher.encrypt(GUILD, 'tök"en\\')) == 'tök"en\\'


def test_other_guild_cannot_decrypt() -> None:
    cipher = TokenCipher([new_key()])
    ciphertext = cipher.encrypt(GUILD, TOKEN)
    with pytest.raises(TokenUndecryptable) as caught:
        cipher.decrypt(OTHER_GUILD, ciphertext)
    assert TOKEN not in str(caught.value)
    assert ciphertext not in str(caught.value)


def test_lost_key_cannot_decrypt() -> None:
    ciphertext = TokenCipher([new_key()]).encrypt(GUILD, TOKEN)
    with pytest.raises(TokenUndecryptable):
        TokenCipher([new_key()]).decrypt(GUILD, ciphertext)


@pytest.mark.parametrize("garbage", ["", "not-fernet", "gAAAAAB" + "x" * 80, "ünicode"])
def test_garbage_cannot_decrypt(garbage: str) -> None:
    with pytest.raises(TokenUndecryptable):
        TokenCipher([new_key()]).decrypt(GUILD, garbage)


def test_tampered_ciphertext_cannot_decrypt() -> None:
    cipher = TokenCipher([new_key()])
    ciphertext = cipher.encrypt(GUILD, TOKEN)
    middle = len(ciphertext) // 2
    flipped = "A" if ciphertext[middle] != "A" else "B"
    with pytest.raises(TokenUndecryptable):
        cipher.decrypt(GUILD, ciphertext[:middle] + flipped + ciphertext[middle + 1 :])


def test_foreign_payload_under_our_key_is_refused() -> None:
    key = new_key()
    # Encrypted with our key but not by TokenCipher (e.g. a bare token from an old format).
    ciphertext = Fernet(key.encode()).encrypt(TOKEN.encode()).decode()
    with pytest.raises(TokenUndecryptable):
        TokenCipher([key]).decrypt(GUILD, ciphertext)


def test_rotation_old_key_second_still_decrypts_and_rotate_moves_to_newest() -> None:
    old, new = new_key(), new_key()
    old_ciphertext = TokenCipher([old]).encrypt(GUILD, TOKEN)

    rotating = TokenCipher([new, old])
    assert rotating.decrypt(GUILD, old_ciphertext) == TOKEN
    assert rotating.needs_rotation(old_ciphertext)

    rotated = rotating.rotate(old_ciphertext)
    assert not rotating.needs_rotation(rotated)
    # Once the old key is removed, only the rotated ciphertext still opens, still bound to its guild.
    new_only = TokenCipher([new])
    assert new_only.decrypt(GUILD, rotated) == TOKEN
    with pytest.raises(TokenUndecryptable):
        new_only.decrypt(OTHER_GUILD, rotated)
    with pytest.raises(TokenUndecryptable):
        new_only.decrypt(GUILD, old_ciphertext)


def test_rotated_is_none_under_the_newest_key_and_moves_older_ones() -> None:
    old, new = new_key(), new_key()
    rotating = TokenCipher([new, old])
    assert rotating.rotated(rotating.encrypt(GUILD, TOKEN)) is None
    rotated = rotating.rotated(TokenCipher([old]).encrypt(GUILD, TOKEN))
    assert rotated is not None
    assert TokenCipher([new]).decrypt(GUILD, rotated) == TOKEN
    stranger = TokenCipher([new_key(), new_key()])
    with pytest.raises(TokenUndecryptable):
        stranger.rotated(rotated)
    with pytest.raises(TokenUndecryptable):
        stranger.rotated("gAAAAAé-not-ascii")


def test_new_ciphertexts_use_the_first_key() -> None:
    first, second = new_key(), new_key()
    ciphertext = TokenCipher([first, second]).encrypt(GUILD, TOKEN)
    assert TokenCipher([first]).decrypt(GUILD, ciphertext) == TOKEN
    with pytest.raises(TokenUndecryptable):
        TokenCipher([second]).decrypt(GUILD, ciphertext)


def test_rotation_of_undecryptable_ciphertext_fails_cleanly() -> None:
    ciphertext = TokenCipher([new_key()]).encrypt(GUILD, TOKEN)
    stranger = TokenCipher([new_key(), new_key()])
    with pytest.raises(TokenUndecryptable):
        stranger.needs_rotation(ciphertext)
    with pytest.raises(TokenUndecryptable):
        stranger.rotate(ciphertext)


def test_bad_keys_are_refused_without_showing_them() -> None:
    bad = "definitely-not-a-fernet-key"
    with pytest.raises(ValueError, match="at least one"):
        TokenCipher([])
    with pytest.raises(ValueError, match="key 2 of 2") as caught:
        TokenCipher([new_key(), bad])
    assert bad not in str(caught.value)
    with pytest.raises(TypeError):
        TokenCipher(new_key())


def test_repr_hides_keys() -> None:
    key = new_key()
    assert key not in repr(TokenCipher([key]))
