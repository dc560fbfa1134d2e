"""Outgoing requests to user-supplied URLs, refused when they could reach an internal address.

`check_url` parses a URL, refuses what is never allowed (other schemes, http in production,
credentials, numeric-host tricks, `localhost` names), resolves the host and refuses it when any
address is not public. `fetch_guarded` then connects to one of exactly those addresses (the
host name only goes into the Host header and the TLS server name), so a second DNS answer
cannot swap in an internal address (DNS rebinding); it never follows a redirect, caps the
body and bounds the whole exchange, DNS included, by one timeout.

Errors:
    GuardError             the request was not made, or not completed
    ├── URLRefused         the URL, or an address its host resolves to, is not allowed
    ├── HostNotResolved    DNS gave no address for the host
    ├── RedirectRefused    the server answered 3xx; redirects are never followed
    ├── ResponseTooLarge   the body is bigger than `max_bytes`
    └── FetchFailed        the connection failed or the timeout passed
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import NamedTuple

import aiohttp
from multidict import CIMultiDict
from yarl import URL

IPAddress = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

DEFAULT_PORTS = {"http": 80, "https": 443}  # RFC 9110 §4.2.1 and §4.2.2
_CHUNK = 64 * 1024


class GuardError(Exception):
    """The outgoing request was refused or did not complete."""


class URLRefused(GuardError):
    """The URL may not be fetched; `kind` names why (a scheme, or an address class)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class HostNotResolved(GuardError):
    """DNS gave no address for the URL's host."""


class RedirectRefused(GuardError):
    """The server answered with a redirect; `location_class` says where it pointed."""

    def __init__(self, status: int, location_class: str) -> None:
        super().__init__(
            f"redirects are not followed: the server answered {status} pointing to {location_class}"
        )
        self.status = status
        self.location_class = location_class


class ResponseTooLarge(GuardError):
    """The response body is bigger than the cap."""


class FetchFailed(GuardError):
    """The connection failed or the timeout passed."""


class Block(NamedTuple):
    """A range never fetched: the class named in refusals, and where the range is defined."""

    network: IPv4Network | IPv6Network
    kind: str
    source: str


def _block(cidr: str, kind: str, source: str) -> Block:
    return Block(ip_network(cidr), kind, source)


# The first matching entry names the class, so the specific entries come first. Anything
# not listed that Python's copy of the IANA special-purpose registries calls non-global is
# refused too (`_address_class`).
BLOCKED_NETWORKS: tuple[Block, ...] = (
    _block("169.254.169.254/32", "cloud metadata", "AWS, GCP and Azure instance metadata"),
    _block("169.254.170.2/32", "cloud metadata", "AWS ECS task metadata endpoint"),
    _block("100.100.100.200/32", "cloud metadata", "Alibaba Cloud ECS metadata service"),
    _block("fd00:ec2::254/128", "cloud metadata", "AWS instance metadata over IPv6"),
    _block("0.0.0.0/8", "unspecified", "RFC 6890 §2.2.2: 'this host on this network'"),
    _block("10.0.0.0/8", "private", "RFC 1918 §3"),
    _block("100.64.0.0/10", "carrier-grade NAT", "RFC 6598: shared address space"),
    _block("127.0.0.0/8", "loopback", "RFC 1122 §3.2.1.3"),
    _block("169.254.0.0/16", "link-local", "RFC 3927"),
    _block("172.16.0.0/12", "private", "RFC 1918 §3"),
    _block("192.0.0.0/24", "reserved", "RFC 6890 §2.2.2: IETF protocol assignments"),
    _block("192.0.2.0/24", "reserved", "RFC 5737: TEST-NET-1"),
    _block("192.88.99.0/24", "reserved", "RFC 7526: deprecated 6to4 relay anycast"),
    _block("192.168.0.0/16", "private", "RFC 1918 §3"),
    _block("198.18.0.0/15", "reserved", "RFC 2544: benchmarking"),
    _block("198.51.100.0/24", "reserved", "RFC 5737: TEST-NET-2"),
    _block("203.0.113.0/24", "reserved", "RFC 5737: TEST-NET-3"),
    _block("224.0.0.0/4", "multicast", "RFC 5771"),
    _block("240.0.0.0/4", "reserved", "RFC 1112 §4 (and 255.255.255.255, RFC 919)"),
    _block("::/128", "unspecified", "RFC 4291 §2.5.2"),
    _block("::1/128", "loopback", "RFC 4291 §2.5.3"),
    _block("::/96", "reserved", "RFC 4291 §2.5.5.1: deprecated IPv4-compatible addresses"),
    _block("64:ff9b:1::/48", "private", "RFC 8215: local-use NAT64 prefix"),
    _block("100::/64", "reserved", "RFC 6666: discard-only prefix"),
    _block("2001::/23", "reserved", "RFC 2928: IETF protocol assignments (incl. Teredo)"),
    _block("2001:db8::/32", "reserved", "RFC 3849: documentation prefix"),
    _block("2002::/16", "reserved", "RFC 7526: deprecated 6to4, embeds any IPv4 address"),
    _block("fc00::/7", "private", "RFC 4193: unique local addresses"),
    _block("fe80::/10", "link-local", "RFC 4291 §2.5.6"),
    _block("fec0::/10", "private", "RFC 3879: deprecated site-local"),
    _block("ff00::/8", "multicast", "RFC 4291 §2.7"),
)

# Prefixes whose last 32 bits are an IPv4 address; that address is what gets judged.
EMBEDDED_IPV4: tuple[IPv6Network, ...] = (
    IPv6Network("::ffff:0:0/96"),  # RFC 4291 §2.5.5.2: IPv4-mapped
    IPv6Network("64:ff9b::/96"),  # RFC 6052 §2.1: NAT64 well-known prefix (DNS64 answers)
)

# Host names refused before any DNS look-up.
BLOCKED_NAMES: dict[str, str] = {
    "localhost": "loopback",  # RFC 6761 §6.3: always the loopback address
    "metadata.google.internal": "cloud metadata",  # GCP metadata server's name
}
BLOCKED_NAME_SUFFIXES: dict[str, str] = {
    ".localhost": "loopback",  # RFC 6761 §6.3: every name under localhost. too
}

# A label made of digits or 0x-hex: inet_aton (and the WHATWG URL parser) read such hosts
# as IPv4 in decimal, octal (leading 0) or hex, with 1 to 4 parts (127.1, 0x7f000001, ...).
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """A URL that passed the checks, and the only addresses it may be fetched from."""

    url: URL
    host: str
    port: int
    addresses: tuple[IPAddress, ...]
    is_ip_literal: bool

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = DEFAULT_PORTS.get(self.url.scheme)
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class GuardedResponse:
    status: int
    headers: CIMultiDict[str]
    body: bytes


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (IPv4 and IPv6)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HostNotResolved(f"{host} does not resolve") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def check_url(
    url: str,
    *,
    allow_http: bool,
    resolver: Resolver = resolve_host,
    allow_loopback_for_tests: bool = False,
) -> ResolvedTarget:
    """Parse, resolve and judge `url`; raise `URLRefused` or `HostNotResolved` when unsafe.

    `allow_loopback_for_tests` lets loopback addresses through for tests that run a local
    server; nothing else may set it.
    """
    parsed = _parse(url)
    _check_scheme(parsed, allow_http)
    _check_no_credentials(url, parsed)
    host, port = _host_and_port(parsed)
    literal = _literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        _check_name(host)
        addresses = await _resolve(resolver, parsed.raw_host or host, port)
    for address in addresses:
        _judge(address, host, allow_loopback_for_tests)
    return ResolvedTarget(parsed, host, port, tuple(addresses), literal is not None)


async def fetch_guarded(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,  # noqa: ASYNC109 - one budget for DNS, connect and body, applied inside
    max_bytes: int,
    allow_http: bool,
    resolver: Resolver = resolve_host,
    allow_loopback_for_tests: bool = False,
) -> GuardedResponse:
    """Send one request to a checked URL, pinned to the checked addresses; never redirects.

    The session must not read proxies from the environment (`trust_env=False`, aiohttp's
    default): a proxy would resolve the host again itself.
    """
    if session.trust_env:
        raise ValueError("fetch_guarded needs a session with trust_env=False")
    try:
        async with asyncio.timeout(timeout):
            target = await check_url(
                url,
                allow_http=allow_http,
                resolver=resolver,
                allow_loopback_for_tests=allow_loopback_for_tests,
            )
            fetch = _Fetch(session, method, body, headers, max_bytes, resolver)
            return await fetch.first_reachable(target)
    except TimeoutError:
        raise FetchFailed(f"no complete answer within {timeout:g} s") from None


# -- parsing and judging -------------------------------------------------------------------


def _parse(url: str) -> URL:
    try:
        return URL(url.strip())
    except (ValueError, TypeError):
        raise URLRefused("not a valid URL", "malformed") from None


def _check_scheme(url: URL, allow_http: bool) -> None:
    allowed = ("https", "http") if allow_http else ("https",)
    if url.scheme not in allowed:
        only = "http or https" if allow_http else "https"
        raise URLRefused(f"only {only} URLs are allowed", "scheme")


def _check_no_credentials(raw: str, url: URL) -> None:
    # yarl drops an empty userinfo ("http://@host"); the raw authority still shows it.
    raw_authority = re.split(r"[/?#\\]", raw.strip().partition("//")[2], maxsplit=1)[0]
    if "@" in raw_authority or url.user is not None or url.password is not None:
        raise URLRefused("URLs may not carry credentials (user:password@)", "credentials")


def _host_and_port(url: URL) -> tuple[str, int]:
    host = (url.raw_host or "").lower()  # IDNA-encoded: what DNS and the Host header see
    host = host[:-1] if host.endswith(".") else host
    if not host:
        raise URLRefused("the URL has no host", "malformed")
    port = url.port
    if port is None or not 0 < port < 65536:
        raise URLRefused("the URL's port is not valid", "malformed")
    return host, port


def _literal_address(host: str) -> IPAddress | None:
    """The address a numeric host stands for, in any spelling inet_aton accepts."""
    if ":" in host:
        if "%" in host:
            raise URLRefused("scoped IPv6 addresses are not allowed", "link-local")
        try:
            return IPv6Address(host)
        except ValueError:
            raise URLRefused("the host is not a valid IPv6 address", "malformed") from None
    labels = host.split(".")
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None
    return _legacy_ipv4(labels)


def _legacy_ipv4(labels: list[str]) -> IPv4Address:
    numbers = [_label_value(label) for label in labels]
    valid = [n for n in numbers if n is not None]
    *head, last = valid or [-1]
    if len(valid) != len(numbers) or len(valid) > 4 or any(n > 255 for n in head):
        raise URLRefused("the host is neither a name nor a valid IPv4 address", "malformed")
    if last >= 256 ** (4 - len(head)):
        raise URLRefused("the host is neither a name nor a valid IPv4 address", "malformed")
    return IPv4Address(sum(n << (8 * (3 - i)) for i, n in enumerate(head)) + last)


def _label_value(label: str) -> int | None:
    if not _NUMERIC_LABEL.fullmatch(label):
        return None
    if label.startswith("0x"):
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8) if set(label) <= set("01234567") else None
    return int(label)


def _check_name(host: str) -> None:
    kind = BLOCKED_NAMES.get(host)
    for suffix, suffix_kind in BLOCKED_NAME_SUFFIXES.items():
        if kind is None and host.endswith(suffix):
            kind = suffix_kind
    if kind is not None:
        raise URLRefused(f"{host} is a {kind} name", kind)


async def _resolve(resolver: Resolver, host: str, port: int) -> list[IPAddress]:
    answers = await resolver(host, port)
    addresses = [_answer_address(answer) for answer in answers]
    if not addresses:
        raise HostNotResolved(f"{host} has no address")
    return addresses


def _answer_address(answer: str) -> IPAddress:
    try:
        return ip_address(answer)
    except ValueError:
        raise HostNotResolved(f"the resolver answered {answer!r}, not an address") from None


def _judge(address: IPAddress, host: str, allow_loopback: bool) -> None:
    kind = _address_class(address)
    if kind is None or (allow_loopback and kind == "loopback"):
        return
    raise URLRefused(f"{host} resolves to a {kind} address ({address})", kind)


def _address_class(address: IPAddress) -> str | None:
    """The blocked class `address` belongs to, or None for a public address."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return _address_class(embedded)
    for block in BLOCKED_NETWORKS:
        if address.version == block.network.version and address in block.network:
            return block.kind
    return None if address.is_global else "non-public"


def _embedded_ipv4(address: IPAddress) -> IPv4Address | None:
    if not isinstance(address, IPv6Address):
        return None
    if any(address in prefix for prefix in EMBEDDED_IPV4):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


# -- the pinned request --------------------------------------------------------------------


@dataclass(slots=True)
class _Fetch:
    session: aiohttp.ClientSession
    method: str
    body: bytes
    headers: Mapping[str, str]
    max_bytes: int
    resolver: Resolver

    async def first_reachable(self, target: ResolvedTarget) -> GuardedResponse:
        """Try each checked address in turn until one accepts the connection."""
        failure: aiohttp.ClientConnectorError | None = None
        for address in target.addresses:
            try:
                return await self.send(target, address)
            except aiohttp.ClientConnectorError as exc:
                failure = exc
        raise FetchFailed(f"could not connect to {target.host}") from failure

    async def send(self, target: ResolvedTarget, address: IPAddress) -> GuardedResponse:
        mapped = address.ipv4_mapped if isinstance(address, IPv6Address) else None
        connect_to = mapped or address
        pinned = target.url.with_host(str(connect_to))
        headers = {**self.headers, "Host": target.host_header}
        name = target.host if target.url.scheme == "https" and not target.is_ip_literal else None
        try:
            async with self.session.request(
                self.method,
                pinned,
                data=self.body,
                headers=headers,
                allow_redirects=False,
                server_hostname=name,
            ) as response:
                return await self._answer(target, response)
        except aiohttp.ClientConnectorError:
            raise
        except aiohttp.ClientError as exc:
            raise FetchFailed(
                f"the request to {target.host} failed ({type(exc).__name__})"
            ) from exc

    async def _answer(
        self, target: ResolvedTarget, response: aiohttp.ClientResponse
    ) -> GuardedResponse:
        if 300 <= response.status < 400:
            where = await _location_class(target, response.headers.get("Location"), self.resolver)
            raise RedirectRefused(response.status, where)
        body = await _read_capped(response, self.max_bytes)
        return GuardedResponse(response.status, CIMultiDict(response.headers), body)


_NOT_ADDRESS_CLASSES = {
    "scheme": "another scheme",
    "credentials": "a URL with credentials",
    "malformed": "a malformed URL",
}


async def _location_class(target: ResolvedTarget, location: str | None, resolver: Resolver) -> str:
    """Where a redirect pointed, as a class of host; the Location itself is never repeated."""
    if not location:
        return "no location"
    try:
        absolute = target.url.join(URL(location))
        await check_url(str(absolute), allow_http=True, resolver=resolver)
    except URLRefused as refused:
        return _NOT_ADDRESS_CLASSES.get(refused.kind, f"a {refused.kind} address")
    except (HostNotResolved, ValueError):
        return "an unresolvable host"
    return "a public address"


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    too_large = ResponseTooLarge(f"the response is larger than {max_bytes} bytes")
    if response.content_length is not None and response.content_length > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
