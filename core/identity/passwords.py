"""Local passwords: the policy a new password must meet, argon2id hashes, and checking a login.

Passwords are read as NFKC (NIST SP 800-63B §5.1.1.2), so a password typed with full-width letters by an IME
(``ｐａｓｓ``) is the same password as its half-width form. Hashes are argon2id with the RFC 9106 "low memory"
parameters; a hash made with other parameters is replaced at the next successful login.

Verification runs on a small thread pool of its own, so hashing (hundreds of milliseconds, 64 MiB each) neither
blocks the event loop nor takes every thread of the default executor, and memory stays bounded under a flood of
logins. A login for an unknown email, or for an account without a password, still verifies against a dummy
hash, so the time taken does not tell whether an account exists.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
import unicodedata
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY
from sqlalchemy import select, update

from core.db.base import utcnow
from core.exceptions import InvalidInput, NotFound
from core.identity.models import Account, AuthSession, PasswordCredential

if TYPE_CHECKING:
    from core.platform import Platform

log = structlog.get_logger(__name__)

HASHER = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
"""argon2id, t=3, m=64 MiB, p=4 (RFC 9106 §4, second recommended option). Tests swap in cheaper parameters."""
MIN_LENGTH = 10
MAX_LENGTH = 256
MAX_LOGIN_LENGTH = 1024
"""The longest password a login accepts: longer than any the policy allows, short enough to hash cheaply."""

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_dummy: dict[tuple[object, ...], str] = {}


# --- the policy -----------------------------------------------------------------------------------------------


def normalise_password(password: str) -> str:
    """The form a password is checked, hashed and verified in."""
    return unicodedata.normalize("NFKC", password)


def policy_errors(password: str, *, email: str | None = None) -> list[dict[str, str]]:
    """Every rule ``password`` breaks, as ``{"field", "rule", "message"}``; empty when it is acceptable.

    Messages never repeat the password, because they reach problem+json bodies and logs.
    """
    password = normalise_password(password)
    errors: list[dict[str, str]] = []

    def fail(rule: str, message: str) -> None:
        errors.append({"field": "password", "rule": rule, "message": message})

    if len(password) < MIN_LENGTH:
        fail("min_length", f"must be at least {MIN_LENGTH} characters long, got {len(password)}")
    if len(password) > MAX_LENGTH:
        fail("max_length", f"must be at most {MAX_LENGTH} characters long, got {len(password)}")
    if password and len(set(password)) == 1:
        fail("repeated_character", "must not be one character repeated")
    if email and password.casefold() == unicodedata.normalize("NFKC", email).strip().casefold():
        fail("same_as_email", "must not be the email address")
    return errors


def check_password_policy(password: str, *, email: str | None = None) -> None:
    """:raises InvalidInput: naming every rule the password breaks (``errors`` lists them)."""
    errors = policy_errors(password, email=email)
    if errors:
        detail = "; ".join(f"password {e['message']} (rule {e['rule']})" for e in errors)
        raise InvalidInput(detail, errors=errors)


# --- hashing --------------------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """An argon2id hash of the normalised password, with the current parameters (blocking)."""
    return HASHER.hash(normalise_password(password))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``, in time that does not depend on where they differ.

    With ``stored_hash=None`` (no such account, or no password) it verifies against a dummy hash and returns
    ``False``, taking as long as a real check. Blocking: use :func:`verify_password_async` from async code.
    """
    target = stored_hash if stored_hash is not None else _dummy_hash()
    try:
        matched = HASHER.verify(target, normalise_password(password))
    except VerificationError:
        return False
    except InvalidHashError:  # a damaged row: refuse, and say so without the hash
        log.error("auth.password_hash_unreadable")
        return False
    return matched and stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    """Whether a stored hash was made with other parameters than the current ones."""
    try:
        return HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def _dummy_hash() -> str:
    """A hash of a random password with the current parameters, made once per set of parameters."""
    params = (HASHER.time_cost, HASHER.memory_cost, HASHER.parallelism, HASHER.hash_len, HASHER.salt_len)
    found = _dummy.get(params)
    if found is None:
        found = _dummy[params] = HASHER.hash(secrets.token_urlsafe(32))
    return found


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="argon2")
        return _pool


async def verify_password_async(stored_hash: str | None, password: str) -> bool:
    """:func:`verify_password` on the hashing threads."""
    return await asyncio.get_running_loop().run_in_executor(
        _executor(), verify_password, stored_hash, password
    )


async def hash_password_async(password: str) -> str:
    """:func:`hash_password` on the hashing threads."""
    return await asyncio.get_running_loop().run_in_executor(_executor(), hash_password, password)


# --- services -------------------------------------------------------------------------------------------------


def login_email(text: str) -> str:
    """An email as typed at login, in the form accounts store it: NFKC, trimmed, lower case."""
    return unicodedata.normalize("NFKC", text).strip().lower()


async def set_password(platform: Platform, account_id: uuid.UUID, password: str) -> None:
    """Give an account a (new) local password. Replacing one ends the account's browser sessions everywhere.

    :raises NotFound: no account has this id.
    :raises InvalidInput: the password breaks the policy (the error names the rule).
    """
    async with platform.sessions.platform() as session:
        account = await session.get(Account, account_id)
    if account is None:
        raise NotFound(f"no account has the id {account_id}")
    check_password_policy(password, email=account.email)
    password_hash = await hash_password_async(password)  # outside any transaction: it takes a while
    async with platform.sessions.platform() as session:
        if await session.get(Account, account_id) is None:  # deleted meanwhile
            raise NotFound(f"no account has the id {account_id}")
        credential = await session.get(PasswordCredential, account_id)
        if credential is None:
            session.add(PasswordCredential(account_id=account_id, password_hash=password_hash))
        else:
            credential.password_hash = password_hash
            await session.execute(
                update(AuthSession)
                .where(AuthSession.account_id == account_id, AuthSession.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
    log.info("auth.password_set", account_id=str(account_id), replaced=credential is not None)


async def check_password_login(
    platform: Platform, municipality_id: int, email: str, password: str
) -> Account | None:
    """The account these credentials log in, or ``None`` — for every reason alike, in about the same time.

    Unknown email, no local password, wrong password and a disabled account all return ``None`` after one
    argon2 verification. On success a hash with outdated parameters is replaced. No transaction is open while
    a hash is computed.
    """
    async with platform.sessions.tenant(municipality_id) as session:
        row = (
            await session.execute(
                select(Account, PasswordCredential)
                .outerjoin(PasswordCredential, PasswordCredential.account_id == Account.id)
                .where(Account.email == login_email(email))
            )
        ).first()
    account, credential = (row[0], row[1]) if row is not None else (None, None)
    stored = credential.password_hash if credential is not None else None
    matched = await verify_password_async(stored, password)
    if account is None or credential is None or not matched or account.disabled_at is not None:
        reason = (
            "unknown_email" if account is None
            else "no_password" if credential is None
            else "wrong_password" if not matched
            else "disabled"
        )  # fmt: skip
        log.info("auth.login_refused", reason=reason, account_id=str(account.id) if account else None)
        return None
    if needs_rehash(credential.password_hash):
        new_hash = await hash_password_async(password)
        async with platform.sessions.tenant(municipality_id) as session:
            await session.execute(
                update(PasswordCredential)
                .where(
                    PasswordCredential.account_id == account.id,
                    PasswordCredential.password_hash == credential.password_hash,  # unless changed meanwhile
                )
                .values(password_hash=new_hash, updated_at=utcnow())
            )
        log.info("auth.password_rehashed", account_id=str(account.id))
    return account
