"""Password hashing: argon2id, verified in constant work for unknown users, bounded input."""

from __future__ import annotations

import pytest

from socpipe.console.passwords import (
    MAX_BYTES,
    PasswordRejected,
    hash_password,
    needs_rehash,
    verify_password,
)


def test_hash_is_argon2id_salted_and_verifies() -> None:
    first = hash_password("correct horse battery")
    second = hash_password("correct horse battery")
    assert first.startswith("$argon2id$")
    assert first != second  # salted
    assert verify_password(first, "correct horse battery")
    assert not verify_password(first, "correct horse batterY")
    assert not needs_rehash(first)


def test_unknown_user_and_broken_hash_fail() -> None:
    assert not verify_password(None, "socpipe-no-such-user")
    assert not verify_password(None, "anything at all here")
    assert not verify_password("not a hash", "anything at all here")


def test_new_passwords_follow_the_rules() -> None:
    for bad, reason in (
        ("short", "at least 12"),
        (" leading space ok?", "spaces"),
        ("with\ncontrol chars", "control"),
        ("x" * (MAX_BYTES + 1), "at most"),
    ):
        with pytest.raises(PasswordRejected, match=reason):
            hash_password(bad)


def test_oversized_password_is_refused_without_hashing() -> None:
    stored = hash_password("correct horse battery")
    assert not verify_password(stored, "x" * (MAX_BYTES * 100))
