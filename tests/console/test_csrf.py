"""CSRF tokens: random, compared in constant time, required for state-changing methods."""

from __future__ import annotations

from socpipe.console import csrf


def test_tokens_are_random_and_long() -> None:
    tokens = {csrf.new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(token) >= 40 for token in tokens)


def test_matching() -> None:
    token = csrf.new_token()
    assert csrf.tokens_match(token, token)
    assert not csrf.tokens_match(token, token[:-1])
    assert not csrf.tokens_match(token, csrf.new_token())
    assert not csrf.tokens_match(token, None)
    assert not csrf.tokens_match(None, token)
    assert not csrf.tokens_match("", "")
    assert not csrf.tokens_match(token, token + "x" * 200)
    assert not csrf.tokens_match(token, "\udcff")


def test_which_methods_need_a_token() -> None:
    assert {
        m
        for m in ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
        if csrf.needs_token(m)
    } == {"POST", "PUT", "PATCH", "DELETE"}
    assert csrf.needs_token("post")
