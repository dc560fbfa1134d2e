"""The SSRF guard: every vector refused, public targets allowed, fetches pinned and capped.

No test leaves the machine: names resolve through a fake resolver, and the only server is a
local one on 127.0.0.1, reached through `allow_loopback_for_tests` (which the guard otherwise
refuses, as the first fetch test shows).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smsrelay.services.ssrf import (
    BLOCKED_NETWORKS,
    FetchFailed,
    HostNotResolved,
    RedirectRefused,
    ResponseTooLarge,
    URLRefused,
    check_url,
    fetch_guarded,
    resolve_host,
)

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:c5e6"


@dataclass
class FakeResolver:
    """Answers from a table; records every question."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        name = host.removesuffix(".")  # an absolute name is the same name to DNS
        if name not in self.answers:
            raise HostNotResolved(f"{host} does not resolve")
        return self.answers[name]


DNS = {
    "hooks.example.com": [PUBLIC_V4, PUBLIC_V6],
    "internal.example": ["10.1.2.3"],
    "rebind.example": [PUBLIC_V4, "127.0.0.1"],
    "mapped.example": ["::ffff:169.254.169.254"],
    "cgnat.example": ["100.64.12.34"],
    "v6-private.example": ["fd12:3456:789a::1"],
    "empty.example": [],
    "alerts.example.com": ["127.0.0.1"],
    "xn--bcher-kva.example": [PUBLIC_V4],
}


@pytest.fixture
def resolver() -> FakeResolver:
    return FakeResolver(dict(DNS))


# -- refused -------------------------------------------------------------------------------

VECTORS = [
    # (url, kind of refusal)
    ("ftp://example.com/file", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://example.com:70/_x", "scheme"),
    ("javascript:alert(1)", "scheme"),
    ("not a url", "scheme"),
    ("http://hooks.example.com/alert", "scheme"),  # http needs allow_http
    ("https://user:pass@hooks.example.com/", "credentials"),
    ("https://user@hooks.example.com/", "credentials"),
    ("https://@hooks.example.com/", "credentials"),
    ("https://:@hooks.example.com/", "credentials"),
    ("https://127.0.0.1/", "loopback"),
    ("https://127.0.0.1./", "loopback"),
    ("https://127.1/", "loopback"),
    ("https://127.0.1/", "loopback"),
    ("https://2130706433/", "loopback"),
    ("https://0x7f000001/", "loopback"),
    ("https://0X7F000001/", "loopback"),
    ("https://0177.0.0.1/", "loopback"),
    ("https://0x7f.0.0.1/", "loopback"),
    ("https://017700000001/", "loopback"),
    ("https://127.000.000.001/", "loopback"),
    ("https://localhost/", "loopback"),
    ("https://localhost./", "loopback"),
    ("https://LOCALHOST:8443/", "loopback"),
    ("https://api.localhost/", "loopback"),
    ("https://[::1]/", "loopback"),
    ("https://[0:0:0:0:0:0:0:1]/", "loopback"),
    ("https://[::ffff:127.0.0.1]/", "loopback"),
    ("https://[::ffff:7f00:1]/", "loopback"),
    ("https://[0:0:0:0:0:ffff:127.0.0.1]/", "loopback"),
    ("https://[64:ff9b::7f00:1]/", "loopback"),
    ("https://[::127.0.0.1]/", "reserved"),
    ("https://0.0.0.0/", "unspecified"),
    ("https://0/", "unspecified"),
    ("https://[::]/", "unspecified"),
    ("https://10.0.0.1/", "private"),
    ("https://172.16.5.4/", "private"),
    ("https://172.31.255.255/", "private"),
    ("https://192.168.1.1/", "private"),
    ("https://0xc0a80101/", "private"),
    ("https://[fc00::1]/", "private"),
    ("https://[fd12:3456:789a::1]/", "private"),
    ("https://100.64.0.1/", "carrier-grade NAT"),
    ("https://100.127.255.254/", "carrier-grade NAT"),
    ("https://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("https://2852039166/", "cloud metadata"),
    ("https://0xa9fea9fe/", "cloud metadata"),
    ("https://0251.0376.0251.0376/", "cloud metadata"),
    ("https://169.254.43518/", "cloud metadata"),
    ("https://[fd00:ec2::254]/", "cloud metadata"),
    ("https://[::ffff:169.254.169.254]/", "cloud metadata"),
    ("https://[64:ff9b::a9fe:a9fe]/", "cloud metadata"),
    ("https://169.254.170.2/v2/credentials", "cloud metadata"),
    ("https://metadata.google.internal/computeMetadata/v1/", "cloud metadata"),
    ("https://169.254.1.1/", "link-local"),
    ("https://[fe80::1]/", "link-local"),
    ("https://[fe80::1%25eth0]/", "link-local"),
    ("https://224.0.0.1/", "multicast"),
    ("https://[ff02::1]/", "multicast"),
    ("https://255.255.255.255/", "reserved"),
    ("https://240.0.0.1/", "reserved"),
    ("https://192.0.2.10/", "reserved"),
    ("https://198.18.0.1/", "reserved"),
    ("https://[2001:db8::1]/", "reserved"),
    ("https://[2002:7f00:1::]/", "reserved"),
    ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "reserved"),
    ("https://256.0.0.1/", "malformed"),
    ("https://0x100000000/", "malformed"),
    ("https://1.2.3.4.5/", "malformed"),
    ("https://08.0.0.1/", "malformed"),
    ("https://0x7_f.0.0.1/", "malformed"),
    ("https://example.0x7f/", "malformed"),
    ("https://1.2.3.256/", "malformed"),
    ("https:///path-only", "malformed"),
    ("https://hooks.example.com:0/", "malformed"),
    # through DNS
    ("https://internal.example/", "private"),
    ("https://rebind.example/", "loopback"),
    ("https://mapped.example/", "cloud metadata"),
    ("https://cgnat.example/", "carrier-grade NAT"),
    ("https://v6-private.example/", "private"),
]


@pytest.mark.parametrize(("url", "kind"), VECTORS, ids=[url for url, _ in VECTORS])
async def test_every_vector_is_refused(resolver: FakeResolver, url: str, kind: str):
    with pytest.raises(URLRefused) as refused:
        await check_url(url, allow_http=False, resolver=resolver)

    assert refused.value.kind == kind


@pytest.mark.parametrize(
    "url",
    ["https://127.1/", "https://2130706433/", "https://[::1]/", "https://localhost./"],
)
async def test_numeric_and_local_hosts_never_reach_dns(resolver: FakeResolver, url: str):
    with pytest.raises(URLRefused):
        await check_url(url, allow_http=True, resolver=resolver)

    assert resolver.asked == []


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/", "http://[::1]/", "http://10.0.0.1/"])
async def test_http_does_not_make_internal_addresses_acceptable(resolver: FakeResolver, url: str):
    with pytest.raises(URLRefused):
        await check_url(url, allow_http=True, resolver=resolver)


@pytest.mark.parametrize("url", ["https://nowhere.example/", "https://empty.example/"])
async def test_a_host_without_addresses_is_not_resolved(resolver: FakeResolver, url: str):
    with pytest.raises(HostNotResolved):
        await check_url(url, allow_http=False, resolver=resolver)


async def test_a_resolver_answer_that_is_not_an_address(resolver: FakeResolver):
    resolver.answers["odd.example"] = ["not-an-ip"]

    with pytest.raises(HostNotResolved):
        await check_url("https://odd.example/", allow_http=False, resolver=resolver)


def test_every_table_entry_names_a_class_and_a_source():
    for block in BLOCKED_NETWORKS:
        assert block.kind
        assert block.source


# -- allowed -------------------------------------------------------------------------------


async def test_a_public_host_is_allowed_with_all_its_addresses(resolver: FakeResolver):
    target = await check_url(
        "https://hooks.example.com/alert?x=1", allow_http=False, resolver=resolver
    )

    assert target.addresses == (ip_address(PUBLIC_V4), ip_address(PUBLIC_V6))
    assert (target.host, target.port, target.host_header) == (
        "hooks.example.com",
        443,
        "hooks.example.com",
    )
    assert resolver.asked == ["hooks.example.com"]


@pytest.mark.parametrize(
    ("url", "host_header"),
    [
        ("https://8.8.8.8/hook", "8.8.8.8"),
        ("https://[2606:4700:4700::1111]:8443/", "[2606:4700:4700::1111]:8443"),
        ("https://[64:ff9b::808:808]/", "[64:ff9b::808:808]"),
        ("https://HOOKS.example.com./", "hooks.example.com"),
        ("https://bücher.example/", "xn--bcher-kva.example"),
    ],
)
async def test_public_literals_and_names_are_allowed(
    resolver: FakeResolver, url: str, host_header: str
):
    target = await check_url(url, allow_http=False, resolver=resolver)

    assert target.host_header == host_header


async def test_http_is_allowed_when_asked(resolver: FakeResolver):
    target = await check_url("http://hooks.example.com:8080/", allow_http=True, resolver=resolver)

    assert (target.port, target.host_header) == (8080, "hooks.example.com:8080")


async def test_the_test_allowance_admits_loopback_only(resolver: FakeResolver):
    target = await check_url(
        "http://alerts.example.com/",
        allow_http=True,
        resolver=resolver,
        allow_loopback_for_tests=True,
    )
    assert target.addresses == (ip_address("127.0.0.1"),)

    with pytest.raises(URLRefused):
        await check_url(
            "http://internal.example/",
            allow_http=True,
            resolver=resolver,
            allow_loopback_for_tests=True,
        )


async def test_the_system_resolver_answers_numeric_hosts_locally():
    assert await resolve_host("127.0.0.1", 80) == ["127.0.0.1"]


# -- fetching from the local test server ---------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    host: str | None
    body: bytes
    headers: dict[str, str]


@dataclass
class LocalServer:
    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


REDIRECTS = {
    "/to-private": "http://10.0.0.7/admin",
    "/to-metadata": "http://169.254.169.254/latest/meta-data/iam/",
    "/to-loopback-decimal": "http://2130706433:8080/",
    "/to-localhost": "http://localhost./",
    "/to-self": "/ok",
    "/to-public": "https://hooks.example.com/next",
    "/to-ftp": "ftp://hooks.example.com/",
    "/to-nowhere": "https://nowhere.example/",
    "/to-credentials": "https://user:pw@hooks.example.com/",
}


def _app(server: LocalServer) -> web.Application:
    async def record(request: web.Request) -> None:
        body = await request.read()
        server.seen.append(
            Seen(request.method, request.path, request.host, body, dict(request.headers))
        )

    async def ok(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="fine", headers={"X-Reply": "yes"})

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=302, headers={"Location": REDIRECTS[request.path]})

    async def big(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=b"x" * 10_000)

    async def streamed(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"y" * 1000)
        await response.write_eof()
        return response

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.release.wait(), 5)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_route("*", "/ok", ok)
    for path in REDIRECTS:
        app.router.add_get(path, redirect)
    app.router.add_get("/big", big)
    app.router.add_get("/streamed", streamed)
    app.router.add_get("/slow", slow)
    return app


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    local = LocalServer()
    runner = web.AppRunner(_app(local))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    local.port = runner.addresses[0][1]
    yield local
    local.release.set()
    await runner.cleanup()


class NoDNS(AbstractResolver):
    """aiohttp's own resolver: any call would mean the pinned address was bypassed."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        raise OSError("aiohttp must not resolve names for a guarded fetch")

    async def close(self) -> None:
        return None


@pytest.fixture
async def aiohttp_dns() -> NoDNS:
    return NoDNS()


@pytest.fixture
async def session(aiohttp_dns: NoDNS) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(resolver=aiohttp_dns)
    async with aiohttp.ClientSession(connector=connector) as client:
        yield client


async def _fetch(
    session: aiohttp.ClientSession,
    resolver: FakeResolver,
    url: str,
    *,
    method: str = "GET",
    max_bytes: int = 1000,
    budget: float = 3.0,
    loopback: bool = True,
) -> Any:
    return await fetch_guarded(
        session,
        method,
        url,
        body=b'{"alert": "low balance"}' if method == "POST" else b"",
        headers={"Content-Type": "application/json", "X-Signature": "sig"},
        timeout=budget,
        max_bytes=max_bytes,
        allow_http=True,
        resolver=resolver,
        allow_loopback_for_tests=loopback,
    )


async def test_the_local_test_server_itself_is_refused(
    server: LocalServer, session: aiohttp.ClientSession, resolver: FakeResolver
):
    with pytest.raises(URLRefused) as refused:
        await _fetch(session, resolver, f"http://127.0.0.1:{server.port}/ok", loopback=False)

    assert refused.value.kind == "loopback"
    assert server.seen == []


async def test_a_name_resolving_to_loopback_is_refused_without_the_allowance(
    server: LocalServer, session: aiohttp.ClientSession, resolver: FakeResolver
):
    with pytest.raises(URLRefused):
        await _fetch(
            session, resolver, f"http://alerts.example.com:{server.port}/ok", loopback=False
        )

    assert server.seen == []


async def test_a_fetch_is_pinned_to_the_checked_address(
    server: LocalServer,
    session: aiohttp.ClientSession,
    resolver: FakeResolver,
    aiohttp_dns: NoDNS,
):
    url = f"http://alerts.example.com:{server.port}/ok"

    response = await _fetch(session, resolver, url, method="POST")

    assert (response.status, response.body, response.headers["x-reply"]) == (200, b"fine", "yes")
    [seen] = server.seen
    assert (seen.method, seen.path, seen.body) == ("POST", "/ok", b'{"alert": "low balance"}')
    assert seen.host == f"alerts.example.com:{server.port}"
    assert seen.headers["X-Signature"] == "sig"
    assert resolver.asked == ["alerts.example.com"]  # once, by the guard
    assert aiohttp_dns.asked == []  # never again, by aiohttp


async def test_an_ipv4_mapped_answer_connects_over_ipv4(
    server: LocalServer, session: aiohttp.ClientSession, resolver: FakeResolver
):
    resolver.answers["alerts.example.com"] = ["::ffff:127.0.0.1"]

    response = await _fetch(session, resolver, f"http://alerts.example.com:{server.port}/ok")

    assert response.status == 200


async def test_the_next_checked_address_is_tried_when_one_refuses(
    server: LocalServer, session: aiohttp.ClientSession, resolver: FakeResolver
):
    resolver.answers["alerts.example.com"] = ["127.0.0.2", "127.0.0.1"]  # nothing on .2

    response = await _fetch(session, resolver, f"http://alerts.example.com:{server.port}/ok")

    assert response.status == 200


async def test_no_reachable_address_fails(session: aiohttp.ClientSession, resolver: FakeResolver):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with pytest.raises(FetchFailed):
        await _fetch(session, resolver, f"http://alerts.example.com:{closed_port}/ok")


@pytest.mark.parametrize(
    ("path", "location_class"),
    [
        ("/to-private", "a private address"),
        ("/to-metadata", "a cloud metadata address"),
        ("/to-loopback-decimal", "a loopback address"),
        ("/to-localhost", "a loopback address"),
        ("/to-self", "a loopback address"),
        ("/to-public", "a public address"),
        ("/to-ftp", "another scheme"),
        ("/to-nowhere", "an unresolvable host"),
        ("/to-credentials", "a URL with credentials"),
    ],
)
async def test_redirects_are_refused_and_never_followed(
    server: LocalServer,
    session: aiohttp.ClientSession,
    resolver: FakeResolver,
    path: str,
    location_class: str,
):
    with pytest.raises(RedirectRefused) as refused:
        await _fetch(session, resolver, f"http://alerts.example.com:{server.port}{path}")

    assert refused.value.status == 302
    assert refused.value.location_class == location_class
    assert location_class in str(refused.value)
    assert REDIRECTS[path] not in str(refused.value)
    assert [seen.path for seen in server.seen] == [path]


@pytest.mark.parametrize("path", ["/big", "/streamed"])
async def test_the_body_is_capped(
    server: LocalServer, session: aiohttp.ClientSession, resolver: FakeResolver, path: str
):
    with pytest.raises(ResponseTooLarge):
        await _fetch(session, resolver, f"http://alerts.example.com:{server.port}{path}")


async def test_a_body_at_the_cap_is_read(
    server: LocalServer, session: aiohttp.ClientSession, resolver: FakeResolver
):
    response = await _fetch(
        session, resolver, f"http://alerts.example.com:{server.port}/big", max_bytes=10_000
    )

    assert len(response.body) == 10_000


async def test_the_whole_exchange_has_one_timeout(
    server: LocalServer, session: aiohttp.ClientSession, resolver: FakeResolver
):
    with pytest.raises(FetchFailed, match=r"within 0\.2 s"):
        await _fetch(session, resolver, f"http://alerts.example.com:{server.port}/slow", budget=0.2)


async def test_a_slow_resolver_counts_against_the_timeout(session: aiohttp.ClientSession):
    async def hangs(host: str, port: int) -> Sequence[str]:
        await asyncio.sleep(5)
        return [PUBLIC_V4]

    with pytest.raises(FetchFailed):
        await fetch_guarded(
            session,
            "GET",
            "https://hooks.example.com/",
            body=b"",
            headers={},
            timeout=0.1,
            max_bytes=10,
            allow_http=False,
            resolver=hangs,
        )


async def test_a_session_reading_proxies_from_the_environment_is_refused(resolver: FakeResolver):
    async with aiohttp.ClientSession(trust_env=True) as proxied:
        with pytest.raises(ValueError, match="trust_env"):
            await _fetch(proxied, resolver, "https://hooks.example.com/")


# -- TLS: connected by address, verified by name -------------------------------------------


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def _tls_fetch(tmp_path: Path, certificate_name: str, resolver: FakeResolver) -> Any:
    cert_path, key_path = _self_signed(tmp_path, certificate_name)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    client_context = ssl.create_default_context(cafile=str(cert_path))
    local = LocalServer()
    runner = web.AppRunner(_app(local))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    port = runner.addresses[0][1]
    connector = aiohttp.TCPConnector(ssl=client_context, resolver=NoDNS())
    try:
        async with aiohttp.ClientSession(connector=connector) as client:
            response = await _fetch(client, resolver, f"https://alerts.example.com:{port}/ok")
    finally:
        await runner.cleanup()
    return response, local.seen, port


async def test_https_is_verified_against_the_host_name(tmp_path: Path, resolver: FakeResolver):
    response, seen, port = await _tls_fetch(tmp_path, "alerts.example.com", resolver)

    assert response.status == 200
    assert seen[0].host == f"alerts.example.com:{port}"


async def test_https_with_another_names_certificate_fails(tmp_path: Path, resolver: FakeResolver):
    with pytest.raises(FetchFailed):
        await _tls_fetch(tmp_path, "other.example", resolver)
