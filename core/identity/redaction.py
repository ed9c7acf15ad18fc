"""Keep secrets out of log lines: a structlog processor.

Two nets. By key: the value of any key whose name suggests a secret (``password``, ``token``, ``cookie``,
``X-Api-Key``, ...; case, ``_`` and ``-`` ignored, anywhere in nested dicts, lists and tuples) becomes ``"***"``.
By shape: inside every string (and string key), ``Bearer <token>``, JWTs, ``password=...``-style pairs (query
strings, form bodies, logfmt, reprs) and OAuth's ``?code=``, ``"token": "..."`` in JSON text, ``Authorization:
...``-style header lines (to the end of the line) and the password in ``scheme://user:password@host`` are
replaced. Every pattern runs in linear time, whatever the string.

Place it after ``format_exc_info`` (so tracebacks are scrubbed too) and before the renderer. It never mutates
what was logged (nested containers are copied), and never raises: objects it does not know (bytes, exceptions,
custom classes) pass through as they are, so do not log those with secrets inside.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from functools import lru_cache
from typing import Any

REDACTED = "***"

SECRET_KEY_WORDS = (
    "password", "passwd", "passphrase", "secret", "token", "api_key", "apikey", "authorization", "cookie",
    "session", "csrf", "client_secret", "private_key", "id_token", "access_token", "refresh_token",
    "code_verifier", "credential",
)  # fmt: skip
"""A key holds a secret if its name, lower-cased and with everything but letters and digits left out, contains one
of these (so ``X-Api-Key``, ``sessionId`` and ``user[password]`` do)."""

_MAX_DEPTH = 32
_STAMPED = frozenset({"timestamp", "level", "logger"})
"""Keys whose values the logging set-up writes itself (over anything logged under those names), so they hold no
secret: the ISO timestamp, with its ``:``, would otherwise be scanned by every pattern on every line."""
_KEPT_ON_FAILURE = ("level", "timestamp", "logger", "_record", "_from_structlog")
"""What an event keeps if it cannot be scrubbed: its metadata, and what ``ProcessorFormatter`` needs."""
_KEY_NOISE = re.compile(r"[^a-z0-9]")
_WORDS = tuple(sorted({_KEY_NOISE.sub("", w) for w in SECRET_KEY_WORDS}))

# Inside text a key is a run of key characters, matched whole (possessive, and only where a run starts, so
# that any input costs linear time) and judged by is_secret_key like a dict key.
_K = r"[A-Za-z0-9_.\-\[\]]"
_QUOTED = r""""(?:[^"\\]|\\.)*+"|'(?:[^'\\]|\\.)*+'"""
_URL_PASSWORD = re.compile(r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]*+://[^/\s:@]*+):[^/\s@]*+@")
_BEARER = re.compile(r"\b(Bearer)\s++[A-Za-z0-9\-._~+/]++=*", re.I)
# JWS and JWE: a base64url JSON header ('{"' always encodes as "eyJ") and two to four more segments.
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}+(?:\.[A-Za-z0-9_-]*+){2,4}")
# Key-value pairs: only the key and separator are matched, the value is looked ahead at, so that a pair with
# an innocent key (next=https://...?token=x) does not hide the pairs inside its value.
# "password": "x", 'token': 5 (JSON text, Python reprs)
_QUOTED_PAIR = re.compile(rf"""(["'])(?P<key>{_K}++)\1\s*:\s*(?=(?P<value>{_QUOTED}|[^\s,}}\]]++))""")
# password=x, token="x y" (query strings, form bodies, logfmt, cookies, keyword reprs)
_ASSIGNMENT = re.compile(rf"(?<!{_K})(?P<key>{_K}++)\s*=\s*(?=(?P<value>{_QUOTED}|[^&\s#;,\"']*+))")
# Authorization: Basic ..., password: x (header lines, "key: value" text): to the end of the line
_HEADER = re.compile(rf"(?<!{_K})(?P<key>{_K}++)\s*:[ \t]*(?=(?P<value>[^\r\n]*+))")


@lru_cache(maxsize=4096)
def is_secret_key(name: str) -> bool:
    """Whether a key called ``name`` holds a secret: ``"X-Api-Key"``, ``"refresh_token"``, ``"sessionId"``.

    Cached: every log line asks again about the same few dozen keys.
    """
    normal = _KEY_NOISE.sub("", name.lower())
    return any(word in normal for word in _WORDS)


def _is_oauth_code(match: re.Match[str]) -> bool:
    """``?code=`` or ``&code=``: an authorization code in a callback URL."""
    start = match.start()
    return match.group("key").lower() == "code" and match.string[start - 1 : start] in ("?", "&")


def _redact_values(text: str, pattern: re.Pattern[str], replacement: str, also: bool = False) -> str:
    parts, done = [], 0
    for match in pattern.finditer(text):
        value = match.group("value")
        if match.start() < done or not value or value == replacement:
            continue  # inside a value already redacted, or nothing (more) to redact
        if is_secret_key(match.group("key")) or (also and _is_oauth_code(match)):
            parts += [text[done : match.end()], replacement]
            done = match.end() + len(value)
    return "".join(parts) + text[done:] if parts else text


def _may_hold_secret(text: str) -> bool:
    """Whether any pattern could match: each needs a ``:`` or ``=``, or starts with ``eyJ`` or ``Bearer``. Most
    values of a log line (methods, paths, numbers, ids) have none, and skip the six scans."""
    return ":" in text or "=" in text or "eyJ" in text or "bearer" in text.lower()


def redact_text(text: str) -> str:
    """``text`` with every secret-looking piece (see the module docstring) replaced by ``***``."""
    if not _may_hold_secret(text):
        return text
    text = _URL_PASSWORD.sub(rf"\1:{REDACTED}@", text)
    text = _BEARER.sub(rf"\1 {REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    text = _redact_values(text, _QUOTED_PAIR, f'"{REDACTED}"')
    text = _redact_values(text, _ASSIGNMENT, REDACTED, also=True)
    return _redact_values(text, _HEADER, REDACTED)


def _redact(value: Any, depth: int, path: frozenset[int]) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if not isinstance(value, dict | list | tuple | set | frozenset):
        return value  # numbers, None, bytes, exceptions, objects: passed through
    if depth >= _MAX_DEPTH:
        return "<nested too deep>"
    if id(value) in path:
        return "<cycle>"
    inner = path | {id(value)}
    if isinstance(value, dict):
        return dict(_redact_item(key, item, depth + 1, inner) for key, item in value.items())
    items = [_redact(item, depth + 1, inner) for item in value]
    if isinstance(value, list):
        return items
    if isinstance(value, tuple):
        return tuple(items)
    return frozenset(items) if isinstance(value, frozenset) else set(items)


def _redact_item(key: Any, value: Any, depth: int, path: frozenset[int]) -> tuple[Any, Any]:
    """One dict entry: the whole value if the key names a secret (unless None or a bool), and the key itself."""
    if isinstance(key, str):
        if is_secret_key(key) and value is not None and not isinstance(value, bool):
            return redact_text(key), REDACTED
        key = redact_text(key)  # a dict keyed by tokens or session ids
    return key, _redact(value, depth, path)


def redact_secrets(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: ``event_dict`` with secrets replaced by ``***`` (see the module docstring)."""
    try:
        return dict(
            (key, value) if key in _STAMPED else _redact_item(key, value, 0, frozenset())
            for key, value in event_dict.items()
        )
    except Exception:  # a processor that raises loses the whole line; losing its values is the lesser harm
        kept = {key: event_dict[key] for key in _KEPT_ON_FAILURE if key in event_dict}
        return kept | {
            "event": "log event dropped: it could not be scrubbed of secrets",
            "redaction_failed": True,
        }
