"""Tenant secrets encrypted at rest with MultiFernet keys from SMSRELAY_SECRET_KEYS.

SMSRELAY_SECRET_KEYS holds comma-separated Fernet keys, newest first: the first key encrypts,
every key decrypts, so a key is rotated by putting a new one in front, running
`smsrelay secrets rotate` (which calls `SecretBox.rotate` on every stored value) and only then
dropping the old key. Nothing is derived when the variable is unset, not even in development:
a key made up on the spot would leave unreadable data behind at the next start.

Errors:
    SecretKeysError (a SettingsError)  SMSRELAY_SECRET_KEYS is unset or holds a malformed key
    SecretDecryptError                 no configured key can read a stored value
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from smsrelay.config import SettingsError

ENV_VAR = "SMSRELAY_SECRET_KEYS"
GENERATE_COMMAND = "smsrelay secrets generate-key"


class SecretKeysError(SettingsError):
    """SMSRELAY_SECRET_KEYS is missing or malformed; the message says how to fix it."""


class SecretDecryptError(Exception):
    """A stored value cannot be read with any configured key."""


def generate_key() -> str:
    """A new random Fernet key (32 url-safe base64 bytes), ready for SMSRELAY_SECRET_KEYS."""
    return Fernet.generate_key().decode("ascii")


class SecretBox:
    """Encrypts with the newest key, decrypts with any of them, and rotates stored tokens."""

    def __init__(self, keys: str | SecretStr | None) -> None:
        fernets = [_fernet(key, position, total) for position, total, key in _split(keys)]
        self._count = len(fernets)
        self._multi = MultiFernet(fernets)

    @property
    def key_count(self) -> int:
        return self._count

    def encrypt(self, plaintext: str) -> str:
        """A Fernet token for `plaintext`, made with the first (newest) key."""
        return self._multi.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The plaintext of a token made with any configured key."""
        try:
            return self._multi.decrypt(_token_bytes(token)).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError) as exc:
            raise _unreadable() from exc

    def rotate(self, token: str) -> str:
        """The same plaintext re-encrypted with the newest key (its timestamp is kept)."""
        try:
            return self._multi.rotate(_token_bytes(token)).decode("ascii")
        except InvalidToken as exc:
            raise _unreadable() from exc

    def __repr__(self) -> str:
        return f"SecretBox(keys=<{self._count} hidden>)"


def _split(keys: str | SecretStr | None) -> list[tuple[int, int, str]]:
    raw = keys.get_secret_value() if isinstance(keys, SecretStr) else keys
    if raw is None or not raw.strip():
        raise SecretKeysError(
            f"{ENV_VAR} is not set: tenant secrets cannot be stored without it. Generate a key "
            f"with `{GENERATE_COMMAND}` and set {ENV_VAR}=<key> (comma-separate several keys, "
            "newest first, when rotating)"
        )
    parts = [part.strip() for part in raw.split(",")]
    return [(position, len(parts), part) for position, part in enumerate(parts, start=1)]


def _fernet(key: str, position: int, total: int) -> Fernet:
    where = f"{ENV_VAR}: key {position} of {total}"
    if not key:
        raise SecretKeysError(f"{where} is empty; remove the stray comma")
    try:
        return Fernet(key.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        # The key itself never goes into the message.
        raise SecretKeysError(
            f"{where} is not a Fernet key (32 url-safe base64-encoded bytes); generate one "
            f"with `{GENERATE_COMMAND}`"
        ) from None


def _token_bytes(token: str) -> bytes:
    try:
        return token.encode("ascii")
    except UnicodeEncodeError:
        raise _unreadable() from None


def _unreadable() -> SecretDecryptError:
    return SecretDecryptError(
        f"a stored secret cannot be decrypted with any key in {ENV_VAR}: the key that "
        "encrypted it was removed, or the value is corrupt; put the old key back at the end "
        "of the list and run `smsrelay secrets rotate`"
    )
