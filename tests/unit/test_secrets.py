"""SecretBox: MultiFernet encryption at rest, key rotation and clear key errors."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from smsrelay.config import SettingsError
from smsrelay.services.secrets import (
    SecretBox,
    SecretDecryptError,
    SecretKeysError,
    generate_key,
)

OLD = generate_key()
NEW = generate_key()
PLAINTEXT = "auth-token-0123456789abcdef ✓"


def test_round_trip():
    box = SecretBox(NEW)

    token = box.encrypt(PLAINTEXT)

    assert PLAINTEXT not in token
    assert box.decrypt(token) == PLAINTEXT


def test_the_same_plaintext_encrypts_differently_each_time():
    box = SecretBox(NEW)

    assert box.encrypt(PLAINTEXT) != box.encrypt(PLAINTEXT)


def test_the_first_key_encrypts():
    token = SecretBox(f"{NEW},{OLD}").encrypt(PLAINTEXT)

    assert Fernet(NEW.encode()).decrypt(token.encode()).decode() == PLAINTEXT
    with pytest.raises(SecretDecryptError):
        SecretBox(OLD).decrypt(token)


def test_every_key_decrypts():
    from_old = SecretBox(OLD).encrypt(PLAINTEXT)

    assert SecretBox(f"{NEW}, {OLD}").decrypt(from_old) == PLAINTEXT


def test_rotate_re_encrypts_with_the_newest_key():
    from_old = SecretBox(OLD).encrypt(PLAINTEXT)

    rotated = SecretBox(f"{NEW},{OLD}").rotate(from_old)

    assert SecretBox(NEW).decrypt(rotated) == PLAINTEXT


def test_rotate_of_an_unreadable_token_raises():
    with pytest.raises(SecretDecryptError):
        SecretBox(NEW).rotate(SecretBox(OLD).encrypt(PLAINTEXT))


@pytest.mark.parametrize(
    "token",
    ["", "not a token", "gAAAAA" + "A" * 80, "é" * 10],
    ids=["empty", "text", "fernet-looking", "non-ascii"],
)
def test_unreadable_tokens_raise_a_clear_error(token: str):
    with pytest.raises(SecretDecryptError) as raised:
        SecretBox(NEW).decrypt(token)

    assert "SMSRELAY_SECRET_KEYS" in str(raised.value)
    assert "smsrelay secrets rotate" in str(raised.value)


def test_a_tampered_token_is_refused():
    token = SecretBox(NEW).encrypt(PLAINTEXT)
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[-1] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode()

    with pytest.raises(SecretDecryptError):
        SecretBox(NEW).decrypt(tampered)


@pytest.mark.parametrize("keys", [None, "", "   ", SecretStr("")])
def test_missing_keys_say_how_to_make_one(keys: str | SecretStr | None):
    with pytest.raises(SecretKeysError) as raised:
        SecretBox(keys)

    message = str(raised.value)
    assert "SMSRELAY_SECRET_KEYS is not set" in message
    assert "smsrelay secrets generate-key" in message
    assert isinstance(raised.value, SettingsError)


@pytest.mark.parametrize(
    ("keys", "where"),
    [
        ("not-a-key", "key 1 of 1"),
        (f"{NEW},short", "key 2 of 2"),
        (f"{NEW},{OLD[:-2]}", "key 2 of 2"),
        ("é" * 44, "key 1 of 1"),
    ],
    ids=["text", "short", "truncated", "non-ascii"],
)
def test_a_malformed_key_is_named_by_position_never_shown(keys: str, where: str):
    with pytest.raises(SecretKeysError) as raised:
        SecretBox(keys)

    message = str(raised.value)
    assert f"SMSRELAY_SECRET_KEYS: {where} is not a Fernet key" in message
    for key in keys.split(","):
        assert key not in message


def test_an_empty_entry_is_named():
    with pytest.raises(SecretKeysError, match="key 2 of 3 is empty"):
        SecretBox(f"{NEW},,{OLD}")


def test_accepts_a_secret_str_and_hides_keys_in_repr():
    box = SecretBox(SecretStr(f"{NEW},{OLD}"))

    assert box.key_count == 2
    assert NEW not in repr(box)
    assert OLD not in repr(box)


def test_generated_keys_are_fernet_keys():
    key = generate_key()

    assert len(base64.urlsafe_b64decode(key)) == 32
    assert key != generate_key()
