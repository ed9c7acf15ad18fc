"""A real OpenID Provider for tests: ``oidc-provider`` (panva, npm) run by Node.js from ``tests/oidc_provider/``.

Use the session-scoped fixture ``oidc_provider`` either by loading this module as a plugin in the top-level
``tests/conftest.py`` (then any test module may name the fixture, and import the helpers below)::

    pytest_plugins = ["tests.oidc"]

or, in a single test module, by importing it (``# ruff: noqa: F811`` at the top of that module, since the
parameter shadows the import; do not do both, or the session starts two providers)::

    from tests.oidc import OIDCProvider, oidc_provider  # noqa: F401

    def test_login(oidc_provider: OIDCProvider) -> None:
        client = oidc_provider.register_client(["http://127.0.0.1:8000/m/miki/auth/oidc/callback"])
        ...
        callback_url = oidc_provider.login(authorize_url, "alice")

The provider is plain http on 127.0.0.1 with a random port; its issuer is ``oidc_provider.issuer``. PKCE (S256)
is required for every client. The "browser" part (:meth:`OIDCProvider.login`) logs in a fixed test account
without any form and consents to everything requested, then returns the redirect to the relying party's callback
without calling it. :meth:`OIDCProvider.set_mode` / :meth:`OIDCProvider.mode` make the token endpoint hand out a
defective ID token (wrong nonce, expired, wrong audience, wrong issuer, bad signature).

Node.js and ``tests/oidc_provider/node_modules`` (``npm ci``, which ``python3 dev.py test`` runs) are needed:
without them the fixture skips, and in CI (``CI`` or ``TSUNAGU_REQUIRE_POSTGRES`` set) it fails instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import pytest

from core.settings import PROJECT_ROOT

PROVIDER_DIR = PROJECT_ROOT / "tests" / "oidc_provider"
SERVER_SCRIPT = PROVIDER_DIR / "server.mjs"
REQUIRED = bool(os.environ.get("CI") or os.environ.get("TSUNAGU_REQUIRE_POSTGRES"))

MODES = ("normal", "wrong_nonce", "expired", "wrong_aud", "wrong_iss", "bad_signature")
"""Token-endpoint behaviours: ``normal``, or an ID token with that one defect (re-signed with the real key,
except ``bad_signature``, whose claims are intact and whose signature bytes are flipped)."""

DEFAULT_CLIENT_ID = "tsunagu-test"
DEFAULT_CLIENT_SECRET = "tsunagu-test-secret"
DEFAULT_REDIRECT_URIS = tuple(
    f"http://testserver/m/{p.stem}/auth/oidc/callback"
    for p in sorted((PROJECT_ROOT / "municipalities").glob("*.toml"))
)
"""The default client's redirect URIs: ``http://testserver/m/<slug>/auth/oidc/callback`` for every manifest in
``municipalities/`` (httpx's ASGI test client uses the host ``testserver``). Other URIs: :meth:`register_client`."""

START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
MAX_HOPS = 10


@dataclass(frozen=True)
class OIDCClient:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: str = "client_secret_basic"


@dataclass
class OIDCProvider:
    """Handle on the running provider process; see the module docstring."""

    issuer: str
    client: OIDCClient
    accounts: dict[str, dict[str, Any]]
    """Test accounts by account id (= ``sub``): ``alice`` (verified email, Japanese name), ``bob`` (email not
    verified), ``carol`` (no email claim). Values are the claims the provider releases."""
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    _metadata: dict[str, Any] | None = field(default=None, repr=False)

    # -- the default client ---------------------------------------------------------------------------

    @property
    def client_id(self) -> str:
        return self.client.client_id

    @property
    def client_secret(self) -> str:
        return self.client.client_secret

    @property
    def redirect_uris(self) -> tuple[str, ...]:
        return self.client.redirect_uris

    # -- discovery --------------------------------------------------------------------------------------

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def metadata(self) -> dict[str, Any]:
        """The discovery document (fetched once)."""
        if self._metadata is None:
            response = httpx.get(self.discovery_url, timeout=5)
            response.raise_for_status()
            self._metadata = response.json()
        return self._metadata

    def jwks(self) -> dict[str, Any]:
        response = httpx.get(self.metadata["jwks_uri"], timeout=5)
        response.raise_for_status()
        return response.json()

    # -- test knobs ---------------------------------------------------------------------------------------

    def set_mode(self, mode: str) -> None:
        """Make every later token response (of every client) use ``mode``; see :data:`MODES`."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
        response = httpx.post(f"{self.issuer}/__test__/mode", json={"mode": mode}, timeout=5)
        response.raise_for_status()

    def get_mode(self) -> str:
        response = httpx.get(f"{self.issuer}/__test__/mode", timeout=5)
        response.raise_for_status()
        return str(response.json()["mode"])

    @contextmanager
    def mode(self, mode: str) -> Iterator[None]:
        """``with oidc_provider.mode("expired"): ...``; back to ``normal`` afterwards, even on failure."""
        self.set_mode(mode)
        try:
            yield
        finally:
            self.set_mode("normal")

    def register_client(
        self,
        redirect_uris: list[str] | tuple[str, ...],
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_endpoint_auth_method: str = "client_secret_basic",
        **metadata: Any,
    ) -> OIDCClient:
        """Register (or replace, same ``client_id``) a confidential code-flow client with these exact redirect
        URIs; ``client_id``/``client_secret`` are generated when not given. ``metadata`` is passed through as
        OIDC client metadata (e.g. ``post_logout_redirect_uris=[...]``). Raises ``ValueError`` with the
        provider's reason for invalid metadata."""
        body: dict[str, Any] = {
            "redirect_uris": list(redirect_uris),
            "token_endpoint_auth_method": token_endpoint_auth_method,
            **metadata,
        }
        if client_id is not None:
            body["client_id"] = client_id
        if client_secret is not None:
            body["client_secret"] = client_secret
        response = httpx.post(f"{self.issuer}/__test__/clients", json=body, timeout=5)
        if response.status_code != 201:
            raise ValueError(f"provider refused client metadata: {response.text}")
        out = response.json()
        return OIDCClient(
            client_id=out["client_id"],
            client_secret=out.get("client_secret", ""),
            redirect_uris=tuple(out["redirect_uris"]),
            token_endpoint_auth_method=out["token_endpoint_auth_method"],
        )

    # -- the browser ----------------------------------------------------------------------------------------

    def login(
        self,
        authorize_url: str,
        account: str | None = "alice",
        *,
        mode: str | None = None,
        browser: httpx.Client | None = None,
    ) -> str:
        """Play the user agent: GET ``authorize_url`` and follow the provider's redirects through its login
        and consent interactions (``account`` logs in, everything requested is granted), then return the
        redirect that leaves the provider -- the relying party's callback URL with ``code``, ``state`` and
        ``iss`` (or ``error``) -- without requesting it.

        ``account``: a key of :attr:`accounts`; ``None`` lets the request's ``login_hint`` name it.
        ``mode``: a token-endpoint mode (:data:`MODES`) for the codes of this login only, instead of
        :meth:`set_mode`; it is attached when the provider asks for consent, which a fresh browser always does.
        ``browser``: an ``httpx.Client`` whose cookies to use and keep. A second login with the same one finds
        the provider session and grant and passes no interaction at all (so ``account`` and ``mode`` are not
        used), unless the request says ``prompt=login``.

        Raises ``AssertionError`` with the provider's answer when it does not redirect (for example an
        unregistered ``redirect_uri`` or an unknown ``client_id``, which the provider shows to the user instead
        of sending back to the client).
        """
        query: dict[str, str] = {}
        if account is not None:
            query["account"] = account
        if mode is not None:
            if mode not in MODES:
                raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
            query["mode"] = mode
        return self._browse(authorize_url, query, browser)

    def deny(
        self,
        authorize_url: str,
        error: str = "access_denied",
        *,
        browser: httpx.Client | None = None,
    ) -> str:
        """Like :meth:`login`, but the user refuses: the callback URL carries ``error`` (e.g. access_denied)."""
        return self._browse(authorize_url, {"error": error}, browser)

    def _browse(self, url: str, interaction_query: Mapping[str, str], browser: httpx.Client | None) -> str:
        own = browser is None
        agent = browser if browser is not None else httpx.Client(timeout=5)
        try:
            for _ in range(MAX_HOPS):
                if not url.startswith(self.issuer + "/"):
                    return url
                if urlsplit(url).path.startswith("/interaction/"):
                    url = _with_query(url, interaction_query)
                response = agent.get(url, follow_redirects=False)
                if response.status_code not in (301, 302, 303, 307, 308):
                    raise AssertionError(
                        f"the provider answered {response.status_code} instead of redirecting "
                        f"(GET {url}): {response.text[:2000]}"
                    )
                url = urljoin(url, response.headers["location"])
            raise AssertionError(f"more than {MAX_HOPS} redirects inside the provider; last: {url}")
        finally:
            if own:
                agent.close()

    # -- diagnostics -----------------------------------------------------------------------------------------

    def output(self) -> str:
        """What the node process printed so far (stdout and stderr)."""
        return self.log.read_text(encoding="utf-8", errors="replace")


# -- helpers for building requests --------------------------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    """``(code_verifier, code_challenge)`` for ``code_challenge_method=S256``."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _with_query(url: str, extra: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in extra]
    query.extend(extra.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def callback_params(callback_url: str) -> dict[str, str]:
    """The query parameters of a callback URL returned by :meth:`OIDCProvider.login`."""
    return dict(parse_qsl(urlsplit(callback_url).query, keep_blank_values=True))


# -- the process ------------------------------------------------------------------------------------------------


def provider_unavailable() -> str | None:
    """``None`` if the provider can be started here, else why not."""
    if shutil.which("node") is None:
        return "Node.js (`node`) is not on PATH"
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        return (
            f"{PROVIDER_DIR.relative_to(PROJECT_ROOT)}/node_modules is not installed "
            "(`python3 dev.py test` runs `npm ci --no-audit --no-fund` there)"
        )
    return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


def start_provider(log: Path, clients: list[dict[str, Any]]) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``server.mjs`` on a free port (it binds port 0 itself, so there is no race) and wait, bounded,
    for its ``listening <issuer>`` line. Returns the process and the issuer; stops the process on failure."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OIDC_", "NODE_OPTIONS"))}
    env["OIDC_CLIENTS"] = json.dumps(clients)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["node", str(SERVER_SCRIPT), "--port", "0"],
            cwd=PROVIDER_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while time.monotonic() < deadline:
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("listening "):
                    return process, line.split(" ", 1)[1].strip()
            if process.poll() is not None:
                raise RuntimeError(f"the OIDC provider exited with {process.returncode}")
            time.sleep(0.05)
        raise RuntimeError(f"the OIDC provider did not say 'listening' within {START_TIMEOUT:.0f} s")
    except BaseException as exc:
        _stop(process)
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:])
        raise RuntimeError(f"{exc}; its output:\n{tail}") from exc


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OIDCProvider]:
    """One provider process for the session, with the default client :data:`DEFAULT_CLIENT_ID`
    (client_secret_basic, redirect URIs :data:`DEFAULT_REDIRECT_URIS`); stopped (bounded) at the end.

    The mode is process-wide: a test that changes it should use ``with oidc_provider.mode(...)`` (or
    ``login(..., mode=...)``), so that later tests find ``normal``."""
    reason = provider_unavailable()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"the OIDC provider is required here (CI) but cannot run: {reason}", pytrace=False)
        pytest.skip(f"no OIDC test provider: {reason}")
    client = OIDCClient(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URIS)
    log = tmp_path_factory.mktemp("oidc-provider") / "provider.log"
    process, issuer = start_provider(
        log,
        [
            {
                "client_id": client.client_id,
                "client_secret": client.client_secret,
                "redirect_uris": list(client.redirect_uris),
                "token_endpoint_auth_method": client.token_endpoint_auth_method,
            }
        ],
    )
    try:
        accounts = httpx.get(f"{issuer}/__test__/accounts", timeout=5).json()
        yield OIDCProvider(issuer=issuer, client=client, accounts=accounts, log=log, process=process)
    finally:
        _stop(process)
