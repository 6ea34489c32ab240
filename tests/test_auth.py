"""Bearer JWTs and dev headers through the real app: accepted, and each way of being wrong."""

from __future__ import annotations

import hashlib
import hmac as hmac_module
import json
import socket
import struct
import threading
import time
import warnings
from base64 import urlsafe_b64encode
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.warnings import InsecureKeyLengthWarning

from revenue_engine.auth import issue_token
from revenue_engine.settings import Settings
from tests.conftest import make_settings
from tests.wire import free_port

SECRET = "k" * 40
VIEWER = {"query": "{ viewer { organizationId email roles } }"}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    data: dict[str, Any] = {
        "sub": "user-1",
        "org_id": "org_1",
        "email": "u@example.com",
        "roles": ["admin"],
        "aud": "revenue-engine",
        "iss": "https://issuer.example",
        "exp": now + 600,
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
async def hs_client(client_for: Callable[[Settings], Any]) -> httpx.AsyncClient:
    settings = make_settings(auth_jwt_secret=SECRET, auth_issuer="https://issuer.example")
    result: httpx.AsyncClient = await client_for(settings)
    return result


async def ask(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/graphql", json=VIEWER, headers={"authorization": f"Bearer {token}"})


async def test_valid_hs256_token(hs_client: httpx.AsyncClient) -> None:
    response = await ask(hs_client, jwt.encode(claims(), SECRET, algorithm="HS256"))
    assert response.status_code == 200
    assert response.json()["data"]["viewer"] == {
        "organizationId": "org_1",
        "email": "u@example.com",
        "roles": ["admin"],
    }


@pytest.mark.parametrize(
    "token_claims",
    [
        claims(exp=int(time.time()) - 3600),
        claims(aud="someone-else"),
        claims(iss="https://evil.example"),
        claims(exp=None),
    ],
    ids=["expired", "wrong-aud", "wrong-iss", "no-exp"],
)
async def test_bad_claims_are_401(
    hs_client: httpx.AsyncClient, token_claims: dict[str, Any]
) -> None:
    response = await ask(hs_client, jwt.encode(token_claims, SECRET, algorithm="HS256"))
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_wrong_secret_alg_none_and_garbage_are_401(hs_client: httpx.AsyncClient) -> None:
    wrong = jwt.encode(claims(), "x" * 40, algorithm="HS256")
    unsigned = jwt.encode(claims(), key=None, algorithm="none")
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rs = jwt.encode(claims(), private, algorithm="RS256")
    for token in (wrong, unsigned, rs, "not.a.token"):
        response = await ask(hs_client, token)
        assert response.status_code == 401, token
        assert "hunter" not in response.text


async def test_missing_organization_claim_is_403(hs_client: httpx.AsyncClient) -> None:
    response = await ask(hs_client, jwt.encode(claims(org_id=None), SECRET, algorithm="HS256"))
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_non_bearer_scheme_is_401(hs_client: httpx.AsyncClient) -> None:
    response = await hs_client.post(
        "/graphql", json=VIEWER, headers={"authorization": "Basic eA=="}
    )
    assert response.status_code == 401


async def test_anonymous_tenant_field_is_typed_unauthenticated(
    hs_client: httpx.AsyncClient,
) -> None:
    response = await hs_client.post("/graphql", json=VIEWER)
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_dev_headers_only_count_in_development(
    client_for: Callable[[Settings], Any],
) -> None:
    headers = {"x-organization-id": "org_dev"}
    test_env: httpx.AsyncClient = await client_for(make_settings(environment="test"))
    response = await test_env.post("/graphql", json=VIEWER, headers=headers)
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    dev: httpx.AsyncClient = await client_for(make_settings(environment="development"))
    response = await dev.post("/graphql", json=VIEWER, headers=headers)
    assert response.json()["data"]["viewer"]["organizationId"] == "org_dev"
    bad = await dev.post("/graphql", json=VIEWER, headers={"x-organization-id": "bad org!"})
    assert bad.status_code == 401


async def test_issue_token_round_trips(hs_client: httpx.AsyncClient) -> None:
    settings = make_settings(auth_jwt_secret=SECRET, auth_issuer="https://issuer.example")
    token = issue_token(settings, "org_9", email="n@example.com", roles=["admin"])
    response = await ask(hs_client, token)
    assert response.json()["data"]["viewer"]["organizationId"] == "org_9"


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, Any]]:
    """A JWKS document on loopback, as an identity provider serves it."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": "key-1", "use": "sig", "alg": "RS256"})
    payload = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", private
    server.shutdown()
    server.server_close()


async def test_rs256_via_jwks_and_no_hs_confusion(
    client_for: Callable[[Settings], Any], jwks_server: tuple[str, Any]
) -> None:
    url, private = jwks_server
    client: httpx.AsyncClient = await client_for(
        make_settings(auth_jwt_secret=None, auth_jwks_url=url)
    )
    good = jwt.encode(claims(iss=None), private, algorithm="RS256", headers={"kid": "key-1"})
    response = await ask(client, good)
    assert response.status_code == 200
    assert response.json()["data"]["viewer"]["organizationId"] == "org_1"
    # An HS256 token is refused when only RS256 (JWKS) is configured: no algorithm confusion.
    hs = jwt.encode(claims(iss=None), "p" * 40, algorithm="HS256")
    assert (await ask(client, hs)).status_code == 401


# --- more ways of being wrong (S2) ----------------------------------------------------------


@pytest.mark.parametrize(
    "token_claims",
    [
        claims(aud=None),
        claims(iss=None),
        claims(nbf=int(time.time()) + 3600),
        claims(aud=["someone-else", "another"]),
    ],
    ids=["no-aud", "no-iss-when-required", "not-yet-valid", "aud-list-without-ours"],
)
async def test_more_bad_claims_are_401(
    hs_client: httpx.AsyncClient, token_claims: dict[str, Any]
) -> None:
    response = await ask(hs_client, jwt.encode(token_claims, SECRET, algorithm="HS256"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "org", [42, ["org_1"], "", "bad org!"], ids=["int", "list", "empty", "chars"]
)
async def test_an_unusable_organization_claim_is_403(
    hs_client: httpx.AsyncClient, org: Any
) -> None:
    response = await ask(hs_client, jwt.encode(claims(org_id=org), SECRET, algorithm="HS256"))
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_other_hmac_algorithms_are_not_accepted(hs_client: httpx.AsyncClient) -> None:
    # The right secret, but an algorithm the configuration does not name.
    for algorithm in ("HS384", "HS512"):
        with warnings.catch_warnings():  # PyJWT finds the test secret short for these
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            token = jwt.encode(claims(), SECRET, algorithm=algorithm)
        response = await ask(hs_client, token)
        assert response.status_code == 401, algorithm


async def test_hs_rs_confusion_with_the_public_key_is_401(
    client_for: Callable[[Settings], Any], jwks_server: tuple[str, Any]
) -> None:
    """The classic attack: sign HS256 with the RSA *public* key (which is public) as the HMAC
    secret, hoping the server verifies with "its key" under the token's algorithm."""
    url, private = jwks_server
    client: httpx.AsyncClient = await client_for(
        make_settings(auth_jwt_secret=None, auth_jwks_url=url)
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def b64(data: bytes) -> str:
        return urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "key-1"}).encode())
    payload = b64(json.dumps(claims(iss=None)).encode())
    signature = hmac_module.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}.{b64(signature)}"
    response = await ask(client, forged)
    assert response.status_code == 401
    # An RS256 token from a key the JWKS does not list is refused too.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unknown = jwt.encode(claims(iss=None), stranger, algorithm="RS256", headers={"kid": "key-9"})
    assert (await ask(client, unknown)).status_code == 401


# --- the key server is down: 503, not 401 ----------------------------------------------------


class JwksServer:
    """A JWKS endpoint whose answer a test chooses: the keys, a status code, garbage or a stall."""

    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        jwk.update({"kid": "key-1", "use": "sig", "alg": "RS256"})
        self.keys = json.dumps({"keys": [jwk]}).encode()
        self.status = 200
        self.body = self.keys
        self.delay = 0.0
        self.requests = 0
        #: Answer the headers, then reset the connection instead of sending the body.
        self.reset = False
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                time.sleep(owner.delay)
                self.send_response(owner.status)
                self.send_header("content-type", "application/json")
                if owner.reset:
                    self.send_header("content-length", str(len(owner.body)))
                    self.end_headers()
                    self.wfile.flush()
                    time.sleep(0.2)  # the client has read the headers and waits for the body
                    linger = struct.pack("ii", 1, 0)  # close with RST, not FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    self.connection.close()
                    self.close_connection = True
                    return
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def token(self) -> str:
        return jwt.encode(
            claims(iss=None), self.private, algorithm="RS256", headers={"kid": "key-1"}
        )


@pytest.fixture
def key_server() -> Iterator[JwksServer]:
    server = JwksServer()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "UNAVAILABLE", "retryAfterSeconds": 5.0}
    assert response.headers["retry-after"] == "5"
    assert "www-authenticate" not in response.headers


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, b'{"error": "down"}'), (503, b""), (200, b"<html>maintenance</html>")],
    ids=["500", "503", "not-json"],
)
async def test_a_failing_key_server_is_503_unavailable(
    client_for: Callable[[Settings], Any],
    key_server: JwksServer,
    status: int,
    body: bytes,
) -> None:
    client: httpx.AsyncClient = await client_for(
        make_settings(auth_jwt_secret=None, auth_jwks_url=key_server.url)
    )
    key_server.status, key_server.body = status, body
    assert_unavailable(await ask(client, key_server.token()))
    # Once the key server is back the same token is accepted.
    key_server.status, key_server.body = 200, key_server.keys
    assert (await ask(client, key_server.token())).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]",
        b'{"keys": []}',
        b'{"keys": "none"}',
        b'{"keys": [{"kty": "RSA"}]}',
        b'{"keys": [{"kty": "oct", "k": "c2VjcmV0", "use": "enc", "kid": "key-1"}]}',
    ],
    ids=["list", "no-keys", "keys-not-a-list", "unusable-key", "no-signing-key"],
)
async def test_json_that_is_not_a_jwk_set_is_503_unavailable(
    client_for: Callable[[Settings], Any], key_server: JwksServer, body: bytes
) -> None:
    client: httpx.AsyncClient = await client_for(
        make_settings(auth_jwt_secret=None, auth_jwks_url=key_server.url)
    )
    key_server.body = body
    assert_unavailable(await ask(client, key_server.token()))
    # Nothing refused was kept: once the key server is right again the token is accepted.
    key_server.body = key_server.keys
    assert (await ask(client, key_server.token())).status_code == 200


async def test_a_connection_reset_while_reading_the_keys_is_503_unavailable(
    client_for: Callable[[Settings], Any], key_server: JwksServer
) -> None:
    client: httpx.AsyncClient = await client_for(
        make_settings(auth_jwt_secret=None, auth_jwks_url=key_server.url)
    )
    key_server.reset = True
    assert_unavailable(await ask(client, key_server.token()))
    key_server.reset = False
    assert (await ask(client, key_server.token())).status_code == 200


async def test_an_unreachable_key_server_is_503_and_a_bad_token_still_401(
    client_for: Callable[[Settings], Any], key_server: JwksServer
) -> None:
    client: httpx.AsyncClient = await client_for(
        make_settings(auth_jwt_secret=None, auth_jwks_url=f"http://127.0.0.1:{free_port()}/jwks")
    )
    assert_unavailable(await ask(client, key_server.token()))
    # A token that cannot be a valid one is refused before any key is needed.
    assert (await ask(client, "not-a-token")).status_code == 401
    hs = jwt.encode(claims(iss=None), "p" * 40, algorithm="HS256")
    assert (await ask(client, hs)).status_code == 401


async def test_a_stalled_key_server_answers_503_within_the_jwks_timeout(
    client_for: Callable[[Settings], Any], key_server: JwksServer
) -> None:
    client: httpx.AsyncClient = await client_for(
        make_settings(
            auth_jwt_secret=None, auth_jwks_url=key_server.url, auth_jwks_timeout_seconds=0.5
        )
    )
    key_server.delay = 3.0
    started = time.monotonic()
    response = await ask(client, key_server.token())
    assert time.monotonic() - started < 2.0
    assert_unavailable(response)
    assert key_server.requests == 1


# --- the verified-token cache ----------------------------------------------------------------


async def test_a_verified_token_is_remembered_until_it_expires(
    hs_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = jwt.encode(claims(exp=int(time.time()) + 5), SECRET, algorithm="HS256")
    assert (await ask(hs_client, token)).status_code == 200
    calls: list[str] = []
    original = jwt.decode

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append("decode")
        return original(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    assert (await ask(hs_client, token)).status_code == 200
    assert calls == []  # served from the cache
    # Past exp (+ the 30 s leeway) the cache no longer answers: the token is verified again
    # (and PyJWT, whose clock is not moved here, decides; expired tokens are refused above).
    later = time.time() + 40
    monkeypatch.setattr(time, "time", lambda: later)
    await ask(hs_client, token)
    assert calls == ["decode"]


async def test_rejected_tokens_are_not_remembered(hs_client: httpx.AsyncClient) -> None:
    wrong = jwt.encode(claims(), "x" * 40, algorithm="HS256")
    for _ in range(2):
        assert (await ask(hs_client, wrong)).status_code == 401
    no_org = jwt.encode(claims(org_id=None), SECRET, algorithm="HS256")
    for _ in range(2):
        assert (await ask(hs_client, no_org)).status_code == 403


def test_the_token_cache_is_bounded_and_ages_out() -> None:
    from revenue_engine.auth import Principal, TokenCache

    cache = TokenCache(size=2, max_age=60)
    for name in ("a", "b", "c"):
        cache.put(name, Principal(organization_id=name), expires=2_000, now=1_000)
    assert cache.get("a", now=1_001) is None  # least recently used, evicted
    assert cache.get("c", now=1_001) == Principal(organization_id="c")
    assert cache.get("c", now=1_061) is None  # at most max_age after verification
