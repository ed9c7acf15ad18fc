"""Local passwords: the policy names the rule it applies, hashes are argon2id, verification takes one path."""

from __future__ import annotations

import string

import pytest
from argon2 import PasswordHasher
from hypothesis import given, settings
from hypothesis import strategies as st

from core.exceptions import InvalidInput
from core.identity import passwords
from core.identity.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    check_password_policy,
    hash_password,
    login_email,
    needs_rehash,
    policy_errors,
    verify_password,
)


class CountingHasher(PasswordHasher):
    def __init__(self, time_cost: int = 1) -> None:
        super().__init__(time_cost=time_cost, memory_cost=8, parallelism=1)
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002 - argon2's name
        self.verified.append(str(hash))
        return super().verify(hash, password)


@pytest.fixture(autouse=True)
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    cheap = CountingHasher()
    monkeypatch.setattr(passwords, "HASHER", cheap)
    return cheap


def rules(password: str, email: str | None = None) -> set[str]:
    return {e["rule"] for e in policy_errors(password, email=email)}


# --- the policy -----------------------------------------------------------------------------------------------


def test_each_rule_is_named() -> None:
    assert rules("short1") == {"min_length"}
    assert rules("x" * 9 + "y") == set()
    assert rules("ab" * 128 + "c") == {"max_length"}
    assert rules("a" * 12) == {"repeated_character"}
    assert rules("ａａａａａａａａａａａ") == {"repeated_character"}  # full-width is read as half-width
    assert rules("taro@example.jp", email="taro@example.jp") == {"same_as_email"}
    assert rules("TARO@Example.JP", email="taro@example.jp") == {"same_as_email"}
    assert rules("taro@example.jp!", email="taro@example.jp") == set()
    assert rules("", email=None) == {"min_length"}
    assert rules("aaa") == {"min_length", "repeated_character"}


def test_the_error_names_the_field_the_rule_and_the_limit() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_password_policy("secret")
    assert caught.value.detail == "password must be at least 10 characters long, got 6 (rule min_length)"
    assert caught.value.extra["errors"] == [
        {"field": "password", "rule": "min_length", "message": "must be at least 10 characters long, got 6"}
    ]


def test_lengths_are_counted_in_characters_not_bytes() -> None:
    assert rules("つなぐつなぐつなぐ十") == set()  # ten characters, thirty bytes
    assert rules("つ" * 5 + "な" * 4) == {"min_length"}
    assert rules("つな" * (MAX_LENGTH // 2)) == set()


@given(st.text(min_size=MIN_LENGTH, max_size=MAX_LENGTH).filter(lambda p: len(set(p)) > 1))
@settings(max_examples=200)
def test_any_varied_password_of_a_good_length_is_accepted(password: str) -> None:
    normalised = passwords.normalise_password(password)
    not_email = normalised.strip().casefold() != "taro@example.jp"
    if MIN_LENGTH <= len(normalised) <= MAX_LENGTH and len(set(normalised)) > 1 and not_email:
        check_password_policy(password, email="taro@example.jp")


@given(st.text(max_size=MIN_LENGTH - 1))
def test_any_shorter_password_is_refused_for_its_length(password: str) -> None:
    if len(passwords.normalise_password(password)) < MIN_LENGTH:
        assert "min_length" in rules(password)


@given(st.text(alphabet=string.ascii_letters + "!?#", min_size=4, max_size=300))
def test_no_message_repeats_the_password(password: str) -> None:
    for error in policy_errors(password, email=password):
        assert password not in error["message"]


# --- hashing --------------------------------------------------------------------------------------------------


def test_a_hash_is_argon2id_and_verifies_only_its_password() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$v=19$")
    assert "correct horse" not in stored
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "correct horse battery ")
    assert not verify_password(stored, "")
    assert hash_password("correct horse battery") != stored  # salted


def test_a_password_is_the_same_in_full_width() -> None:
    stored = hash_password("Ｐａｓｓｗｏｒｄ１２３")
    assert verify_password(stored, "Password123")


def test_without_a_hash_it_still_verifies_once_and_refuses(hasher: CountingHasher) -> None:
    assert not verify_password(None, "anything at all")
    assert len(hasher.verified) == 1
    assert hasher.verified[0].startswith("$argon2id$")  # a real hash with the current parameters
    assert not verify_password(None, "anything at all")
    assert hasher.verified[0] == hasher.verified[1]  # made once, not on every login


def test_a_damaged_hash_is_refused() -> None:
    assert not verify_password("$argon2id$nonsense", "anything at all")
    assert needs_rehash("$argon2id$nonsense")


def test_a_hash_with_other_parameters_needs_rehashing(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = hash_password("correct horse battery")
    assert not needs_rehash(stored)
    monkeypatch.setattr(passwords, "HASHER", CountingHasher(time_cost=2))
    assert needs_rehash(stored)
    assert verify_password(stored, "correct horse battery")  # still good until it is replaced


def test_the_production_parameters_are_rfc_9106_low_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    hasher = passwords.HASHER
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (3, 64 * 1024, 4)
    assert (hasher.hash_len, hasher.salt_len) == (32, 16)
    assert hasher.type.name == "ID"


def test_login_emails_are_read_as_stored() -> None:
    assert login_email("  taro@EXAMPLE.jp ") == "taro@example.jp"
    assert login_email("Taro@Example.jp") == "taro@example.jp"  # one address, one account
    assert login_email("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ") == "taro@example.jp"
    assert login_email("not an email") == "not an email"
