"""Twilio's request signature (`X-Twilio-Signature`): computing it and checking it.

The signature is base64(HMAC-SHA1(auth_token, url + each POST parameter as name + value)),
parameters sorted by name and a repeated name's values sorted and de-duplicated. For JSON
webhooks Twilio adds `bodySHA256` (hex SHA-256 of the raw body) to the URL and signs the URL
alone. Twilio's SDKs accept a signature made over the URL with its port removed or with the
scheme's default port added; so does `is_valid_signature`, and it also tries the URL with its
query percent-encoded the way a WHATWG URL parser does (twilio-node signs that form).
Sources: https://www.twilio.com/docs/usage/webhooks/webhooks-security and the vectors in
shared/vectors/twilio_signature.json.

Web frameworks give repeated form fields as a multi-dict; pass every value of a name
(`{name: form.getall(name) for name in form}`), not just the first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator, Mapping, Sequence
from urllib.parse import parse_qs, quote, urlsplit

Params = Mapping[str, str | Sequence[str]]

# Source: RFC 3986 §6.2.3 (scheme-based normalisation); the ports Twilio's SDKs add or remove.
DEFAULT_PORTS = {"https": 443, "http": 80}

# Source: WHATWG URL Standard, "special-query percent-encode set": C0 controls, space, ", #, <, >
# and ' stay encoded; every other printable ASCII character (and '%') is left as it is.
_WHATWG_QUERY_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "\"#<>'")


def compute_signature(url: str, params: Params, auth_token: str) -> str:
    """Return the X-Twilio-Signature Twilio would send for a request to `url` with `params`."""
    payload = url + "".join(name + value for name, value in _sorted_pairs(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), "sha1").digest()
    return base64.b64encode(digest).decode("ascii")


def is_valid_signature(
    url: str,
    params: Params,
    signature: str,
    auth_token: str,
    body: bytes | None = None,
) -> bool:
    """Check `signature` for a request to `url`; pass the raw `body` of a JSON webhook."""
    if body is not None:
        if not _body_hash_matches(url, body):
            return False
        params = {}
    # Stops at the first spelling that matches (the received URL, almost always, tried before
    # the others are even spelled): which one matched is no secret, and each costs an HMAC.
    if _equal(compute_signature(url, params, auth_token), signature):
        return True
    others = candidate_urls(url)[1:]
    return any(_equal(compute_signature(u, params, auth_token), signature) for u in others)


def candidate_urls(url: str) -> list[str]:
    """The URL spellings a signature may have been made over, the received one first."""
    try:
        ported = [url, _without_port(url), _with_default_port(url)]
    except ValueError:  # not a URL urllib can split (e.g. an unclosed IPv6 bracket)
        ported = [url]
    encoded = [_whatwg_query(u) for u in ported]
    return list(dict.fromkeys(ported + encoded))


def _sorted_pairs(params: Params) -> Iterator[tuple[str, str]]:
    for name in sorted(params):
        value = params[name]
        if isinstance(value, str):  # a name given once, as almost every one is
            yield name, value
            continue
        for each in sorted(set(value)):
            yield name, each


def _equal(expected: str, received: str) -> bool:
    return hmac.compare_digest(expected.encode(), received.encode())


def _body_hash_matches(url: str, body: bytes) -> bool:
    claimed = parse_qs(urlsplit(url).query).get("bodySHA256")
    if not claimed:
        return False
    return _equal(hashlib.sha256(body).hexdigest(), claimed[0])


def _port(url: str) -> int | None:
    return urlsplit(url).port


def _replace_hostport(url: str, hostport: str) -> str:
    netloc = urlsplit(url).netloc
    start = url.index("//") + 2
    userinfo, at, _ = netloc.rpartition("@")
    return url[:start] + userinfo + at + hostport + url[start + len(netloc) :]


def _hostport(url: str) -> str:
    return urlsplit(url).netloc.rpartition("@")[2]


def _without_port(url: str) -> str:
    if _port(url) is None:
        return url
    hostport = _hostport(url)
    return _replace_hostport(url, hostport[: hostport.rindex(":")])


def _with_default_port(url: str) -> str:
    default = DEFAULT_PORTS.get(urlsplit(url).scheme)
    if default is None or _port(url) is not None or not _hostport(url):
        return url
    return _replace_hostport(url, f"{_hostport(url)}:{default}")


def _whatwg_query(url: str) -> str:
    base, mark, rest = url.partition("?")
    if not mark:
        return url
    query, hash_mark, fragment = rest.partition("#")
    return base + mark + quote(query, safe=_WHATWG_QUERY_SAFE) + hash_mark + fragment
