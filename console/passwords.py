"""Password hashing (argon2id) and the rules a new password must meet."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
#: Bounded so that hashing cost stays bounded whatever a client posts.
MAX_BYTES = 1024

#: RFC 9106's second recommended option (64 MiB, 3 passes), argon2-cffi's default.
_HASHER = PasswordHasher()
#: Verified against when the user name is unknown, so that a wrong name takes as long as a
#: wrong password and response times do not tell which names exist.
_DUMMY_HASH = _HASHER.hash("socpipe-no-such-user")


class PasswordRejected(ValueError):
    """A new password that does not meet the rules, with the reason."""


def check_new_password(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(f"a password needs at least {MIN_LENGTH} characters")
    if len(password.encode("utf-8")) > MAX_BYTES:
        raise PasswordRejected(f"a password may have at most {MAX_BYTES} bytes")
    if password.strip() != password or not password.isprintable():
        raise PasswordRejected(
            "a password must not start or end with spaces or hold control characters"
        )


def hash_password(password: str) -> str:
    check_new_password(password)
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; an unknown user (``None``) costs the same and fails."""
    if len(password.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        return False
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's (then store a new one)."""
    return _HASHER.check_needs_rehash(stored_hash)
