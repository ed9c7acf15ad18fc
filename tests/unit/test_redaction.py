"""Secrets never reach a log line: by key name, and by shape inside strings, whatever else is logged."""

from __future__ import annotations

import base64
import copy
import json
import string
from typing import Any

import pytest
import structlog
from hypothesis import assume, given
from hypothesis import strategies as st

from core.identity.redaction import SECRET_KEY_WORDS, is_secret_key, redact_secrets, redact_text

render = structlog.processors.JSONRenderer()


def redact(event: dict[str, Any]) -> dict[str, Any]:
    return dict(redact_secrets(None, "info", event))


def rendered(event: dict[str, Any]) -> str:
    return str(render(None, "info", redact(event)))


# --- by key -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["password", "PASSWD", "db_password", "user[password]", "client_secret", "X-Api-Key", "apiKey", "Authorization",
     "Set-Cookie", "session_id", "sessionId", "csrf_token", "private_key", "id_token", "refresh-token",
     "code_verifier", "passphrase", "aws_credentials"],
)  # fmt: skip
def test_secret_key_names(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key", ["event", "municipality", "request_id", "user_id", "email", "path", "code", "level"]
)
def test_ordinary_key_names(key: str) -> None:
    assert not is_secret_key(key)


def test_values_under_secret_keys_are_replaced_at_any_depth() -> None:
    event = {
        "event": "login",
        "municipality": "miki",
        "password": "hunter2",
        "request": {
            "headers": [{"Authorization": "Basic dXNlcjpodW50ZXIy"}, {"Accept": "text/html"}],
            "form": {"user": "hanako", "csrf_token": 1234, "remember": True},
        },
        "session": {"id": "abc", "account": 5},
        "has_password": True,
        "refresh_token": None,
    }
    assert redact(event) == {
        "event": "login",
        "municipality": "miki",
        "password": "***",
        "request": {
            "headers": [{"Authorization": "***"}, {"Accept": "text/html"}],
            "form": {"user": "hanako", "csrf_token": "***", "remember": True},
        },
        "session": "***",
        "has_password": True,  # a bool or None says nothing secret
        "refresh_token": None,
    }


def test_what_was_logged_is_not_changed() -> None:
    event = {"payload": {"password": "x", "items": [{"token": "y"}]}, "note": "token=z"}
    before = copy.deepcopy(event)
    redact(event)
    assert event == before


# --- by shape, inside strings -----------------------------------------------------------------------------------

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def-ghi", "Authorization: ***"),
        ("retrying with bearer abc.def-ghi now", "retrying with bearer *** now"),
        (f"token {JWT} rejected", "token *** rejected"),
        ("GET /login/callback?code=SplxlOBeZQQYbYS6WxSbIA&state=xyz", "GET /login/callback?code=***&state=xyz"),
        ("POST /token grant_type=refresh_token&refresh_token=tGzv3JOkF0XG5Qx2TlKWIA", "POST /token grant_type=refresh_token&refresh_token=***"),
        ("next=https://a.example/?access_token=zz#top", "next=https://a.example/?access_token=***#top"),
        ("connecting to postgresql://tsunagu:s3cr3t@db:5432/tsunagu", "connecting to postgresql://tsunagu:***@db:5432/tsunagu"),
        ("redis://:s3cr3t@cache:6379/0", "redis://:***@cache:6379/0"),
        ('body {"user": "hanako", "password": "hun\\"ter2", "n": 1}', 'body {"user": "hanako", "password": "***", "n": 1}'),
        ("Settings(secret_key='abc def', debug=False)", "Settings(secret_key=***, debug=False)"),
        ("{'api_key': 12345, 'page': 2}", "{'api_key': \"***\", 'page': 2}"),
        ('level=info password="a b c" user=hanako', "level=info password=*** user=hanako"),
        ("Cookie: sid=abc; theme=dark\nAccept: */*", "Cookie: ***\nAccept: */*"),
        ("user: hanako, password: hunter2", "user: hanako, password: ***"),
        ("X-Api-Key: k_live_123", "X-Api-Key: ***"),
    ],
)  # fmt: skip
def test_secret_shapes_in_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert redact_text(expected) == expected


@pytest.mark.parametrize(
    "text",
    [
        "user logged in",
        "municipality=miki request_id=7f3c path=/notices?page=2",
        "高松市のお知らせを公開しました",
        "https://www.city.takamatsu.kagawa.jp/kurashi/index.html",
        "mailto:info@example.jp",
        "account 5 signed in at 10:30",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


@given(st.text(st.characters(exclude_characters="=:@")))
def test_text_without_separators_or_token_prefixes_is_left_alone(text: str) -> None:
    assume("bearer" not in text.lower() and "eyJ" not in text)
    assert redact_text(text) == text


def test_tracebacks_are_scrubbed_when_placed_after_format_exc_info() -> None:
    log = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[structlog.processors.format_exc_info, redact_secrets, render],
    )
    try:
        raise RuntimeError("provider answered 401 for client_secret=s3cr3t-value")
    except RuntimeError:
        line = log.error("token exchange failed", exc_info=True, access_token="a1b2c3")
    assert "s3cr3t-value" not in line and "a1b2c3" not in line
    assert "token exchange failed" in line and "RuntimeError" in line


# --- never crashes, never leaks ---------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.binary(max_size=10),
)
keys = st.one_of(st.text(max_size=12), st.sampled_from(SECRET_KEY_WORDS), st.integers())
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.frozensets(st.one_of(st.text(max_size=10), st.integers()), max_size=3),
        st.dictionaries(keys, inner, max_size=4),
    ),
    max_leaves=25,
)


@given(st.dictionaries(st.text(max_size=12), anything, max_size=6))
def test_any_event_is_scrubbed_without_error_and_renders(event: dict[str, Any]) -> None:
    out = redact(event)
    assert "redaction_failed" not in out
    assert redact(out) == out  # a second pass changes nothing
    json.loads(str(render(None, "info", out)))


def test_cycles_and_very_deep_nesting_do_not_crash() -> None:
    loop: list[Any] = ["token=abc"]
    loop.append(loop)
    deep: dict[str, Any] = {"password": "x"}
    for _ in range(200):
        deep = {"next": deep}
    out = redact({"loop": loop, "deep": deep})
    assert out["loop"] == ["token=***", "<cycle>"]
    assert '"x"' not in rendered(out)


class Hostile(dict[str, Any]):
    def items(self) -> Any:
        raise RuntimeError("cannot be read")


def test_an_event_that_cannot_be_scrubbed_is_dropped_not_logged() -> None:
    out = redact({"level": "info", "event": "token=abc", "payload": Hostile(password="hunter2")})
    assert out == {
        "level": "info",
        "event": "log event dropped: it could not be scrubbed of secrets",
        "redaction_failed": True,
    }


token = st.text(string.ascii_letters + string.digits + "-._~", min_size=12, max_size=40)
secret_key = st.tuples(
    st.sampled_from(["", "x-", "user_", "oauth."]),
    st.sampled_from(SECRET_KEY_WORDS),
    st.sampled_from(["", "_id", "-value", "s"]),
    st.booleans(),
).map(lambda t: (t[0] + t[1] + t[2]).upper() if t[3] else t[0] + t[1] + t[2])
filler = st.text(st.characters(exclude_categories=["Cs"]), max_size=15)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@st.composite
def jwt(draw: st.DrawFn) -> str:
    header = {"alg": draw(st.sampled_from(["RS256", "ES256", "HS256", "none"])), "typ": "JWT"}
    claims = draw(
        st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=5), st.integers(), max_size=3)
    )
    signature = draw(st.binary(max_size=64))
    return ".".join(b64url(json.dumps(part).encode()) for part in (header, claims)) + "." + b64url(signature)


@st.composite
def leaked(draw: st.DrawFn) -> tuple[list[str], Any]:
    """Pieces of a secret that must not show, and a value carrying it in a shape the processor must catch."""
    kind = draw(st.sampled_from(["key", "bearer", "jwt", "query", "url", "json", "header", "logfmt"]))
    secret = draw(jwt()) if kind == "jwt" else draw(token)
    key, before, after = draw(secret_key), draw(filler), draw(filler)
    pieces = [secret] + [part for part in secret.split(".")[1:] if kind == "jwt" and len(part) >= 8]
    assume(not any(piece in key + before + after for piece in pieces))
    carriers = {
        "key": {key: secret},
        "bearer": f"{before} Bearer {secret}",
        "jwt": f"{before} {secret} {after}",
        "query": f"{before} /cb?a=1&{key}={secret}&b={after}",
        "url": f"{before} postgresql://tsunagu:{secret}@db/{after}",
        "json": f"{before} {json.dumps({key: secret, 'n': after})}",
        "header": f"{before}\n{key}: {secret}\n{after}",
        "logfmt": f'{before} {key}="{secret}" {after}',
    }
    return pieces, carriers[kind]


@given(leaked(), anything, st.lists(st.sampled_from(["list", "tuple", "dict"]), max_size=4))
def test_a_secret_never_reaches_the_rendered_line(
    case: tuple[str, Any], noise: Any, wrapping: list[str]
) -> None:
    pieces, carrier = case
    for how in wrapping:  # bury it somewhere, under innocent names
        carrier = {"list": [noise, carrier], "tuple": (carrier, noise), "dict": {"detail": carrier}}[how]
    event = {"event": "something happened", "context": carrier, "noise": noise}
    assume(not any(piece in str(render(None, "info", {"noise": noise})) for piece in pieces))
    line = rendered(event)
    for piece in pieces:  # the secret, and a JWT's payload and signature
        assert piece not in line
