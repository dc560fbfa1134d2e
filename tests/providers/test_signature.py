"""Twilio request signatures against every shared vector, tampered copies and random mutations."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsrelay.providers.twilio.signature import (
    candidate_urls,
    compute_signature,
    is_valid_signature,
)

VECTORS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"
VECTORS: dict[str, Any] = json.loads((VECTORS_DIR / "twilio_signature.json").read_text())


@dataclass(frozen=True)
class Vector:
    id: str
    url: str
    params: dict[str, str | list[str]]
    signature: str
    token: str
    body: bytes | None
    valid: bool
    signed_url: str | None = None


def _vector(raw: dict[str, Any]) -> Vector:
    body = raw.get("body")
    return Vector(
        id=raw.get("id", "twilio-docs-legacy-example"),
        url=raw.get("url_as_received") or raw["url"],
        params=raw.get("params") or {},
        signature=raw["x_twilio_signature"],
        token=raw["auth_token"],
        body=None if body is None else body.encode(),
        valid=raw["expected_valid"],
        signed_url=raw.get("derived_signed_string_url"),
    )


ALL_VECTORS = [
    _vector(raw)
    for raw in [
        *VECTORS["official_sdk_vectors"],
        VECTORS["twilio_docs_legacy_example"],
        *VECTORS["derived_sms_vectors"],
    ]
]
VALID_VECTORS = [v for v in ALL_VECTORS if v.valid]


def _ids(vectors: list[Vector]) -> list[str]:
    return [v.id for v in vectors]


def _check(vector: Vector, **changes: Any) -> bool:
    fields = {
        "url": vector.url,
        "params": vector.params,
        "signature": vector.signature,
        "auth_token": vector.token,
        "body": vector.body,
    }
    return is_valid_signature(**(fields | changes))


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=_ids(ALL_VECTORS))
def test_every_vector_gets_its_expected_verdict(vector: Vector) -> None:
    assert _check(vector) is vector.valid


SIGNED_URL_VECTORS = [v for v in VALID_VECTORS if v.signed_url and v.body is None]


@pytest.mark.parametrize("vector", SIGNED_URL_VECTORS, ids=_ids(SIGNED_URL_VECTORS))
def test_compute_signature_over_the_signed_url_reproduces_the_vector(vector: Vector) -> None:
    assert vector.signed_url is not None
    assert compute_signature(vector.signed_url, vector.params, vector.token) == vector.signature


def _flip_last_char(signature: str) -> str:
    body = signature.rstrip("=")
    replacement = "A" if body[-1] != "A" else "B"
    return body[:-1] + replacement + signature[len(body) :]


TAMPERINGS = {
    "signature-char": lambda v: {"signature": _flip_last_char(v.signature)},
    "signature-empty": lambda v: {"signature": ""},
    "wrong-token": lambda v: {"auth_token": v.token + "0"},
    "extra-param": lambda v: {"params": {**v.params, "Tampered": "1"}},
    "url-path": lambda v: {"url": v.url.replace(".php", ".phq").replace("/sms/", "/smz/")},
    "body": lambda v: {"body": None if v.body is None else v.body + b" "},
}


# A JSON webhook signs URL + body, so form params do not apply to it; a form has no body.
NOT_APPLICABLE = {"extra-param": "json", "body": "form"}
TAMPER_CASES = [
    pytest.param(vector, name, id=f"{vector.id}-{name}")
    for vector in VALID_VECTORS
    for name in TAMPERINGS
    if NOT_APPLICABLE.get(name) != ("form" if vector.body is None else "json")
]


@pytest.mark.parametrize(("vector", "tampering"), TAMPER_CASES)
def test_tampered_copies_of_valid_vectors_are_rejected(vector: Vector, tampering: str) -> None:
    changes = TAMPERINGS[tampering](vector)
    assert changes.get("url", "") != vector.url
    assert _check(vector, **changes) is False


@pytest.mark.parametrize(
    "case", VECTORS["body_hash_vectors"], ids=lambda c: f"{c['sha256_hex'][:8]}-{len(c['body'])}"
)
def test_body_hash_vectors(case: dict[str, Any]) -> None:
    assert (hashlib.sha256(case["body"].encode()).hexdigest() == case["sha256_hex"]) is case.get(
        "expected_valid", True
    )
    url = f"https://mycompany.com/myapp.php?bodySHA256={case['sha256_hex']}"
    signature = compute_signature(url, {}, "12345")
    verdict = is_valid_signature(url, {}, signature, "12345", body=case["body"].encode())
    assert verdict is case.get("expected_valid", True)


def test_repeated_values_are_order_free_and_deduplicated() -> None:
    url = "https://example.com/hook"
    one = compute_signature(url, {"Digits": ["5678", "1234", "1234"]}, "t")
    assert one == compute_signature(url, {"Digits": ["1234", "5678"]}, "t")
    assert one != compute_signature(url, {"Digits": "1234"}, "t")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h.example/p?a=1", ["https://h.example/p?a=1", "https://h.example:443/p?a=1"]),
        ("http://u:p@h.example:8080/p", ["http://u:p@h.example:8080/p", "http://u:p@h.example/p"]),
        ("https://h.example/p?q=It's", ["https://h.example/p?q=It%27s"]),
        ("https://[::1]:8443/p", ["https://[::1]:8443/p", "https://[::1]/p"]),
        ("https://[::1/p", ["https://[::1/p"]),
    ],
)
def test_candidate_urls(url: str, expected: list[str]) -> None:
    candidates = candidate_urls(url)
    assert candidates[0] == url
    assert set(expected) <= set(candidates)


def test_a_non_ascii_signature_is_simply_invalid() -> None:
    assert is_valid_signature("https://h.example/", {}, "sïgnature", "t") is False


# Hypothesis: any single mutation of what was signed is rejected.

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_name = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8)
_params = st.dictionaries(_name, _text, max_size=6)
_urls = st.builds(
    "{}://{}{}/{}?{}".format,
    st.sampled_from(["http", "https"]),
    st.sampled_from(["example.com", "user:pw@example.com", "127.0.0.1"]),
    st.sampled_from(["", ":80", ":443", ":8088"]),
    st.text("abcxyz/-_.", max_size=10),
    st.text("abc=&%20+'", max_size=10),
)
_tokens = st.text(min_size=1, max_size=32)


@st.composite
def _mutations(draw: st.DrawFn, url: str, params: dict[str, str], token: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["value", "add", "remove", "rename", "url", "token"]))
    if kind == "value" and params:
        name = draw(st.sampled_from(sorted(params)))
        return {"params": {**params, name: params[name] + draw(_text.filter(bool))}}
    if kind == "remove" and params:
        name = draw(st.sampled_from(sorted(params)))
        return {"params": {k: v for k, v in params.items() if k != name}}
    if kind == "rename" and params:
        name = draw(st.sampled_from(sorted(params)))
        renamed = {k: v for k, v in params.items() if k != name}
        return {"params": renamed | {name + "x": params[name]}}
    if kind == "url":
        return {"url": url + draw(st.sampled_from(["x", "/", "&z=1"]))}
    if kind == "token":
        # Letters only: HMAC pads a short key with NUL bytes, so token + "\0" is the same key.
        return {"auth_token": token + draw(st.text("abcXYZ", min_size=1, max_size=3))}
    new_name = draw(_name.filter(lambda n: n not in params))
    return {"params": {**params, new_name: draw(_text)}}


@given(data=st.data(), url=_urls, params=_params, token=_tokens)
def test_any_mutation_is_rejected(
    data: st.DataObject, url: str, params: dict[str, str], token: str
) -> None:
    signature = compute_signature(url, params, token)
    original = {"url": url, "params": params, "signature": signature, "auth_token": token}
    assert is_valid_signature(**original)
    changes = data.draw(_mutations(url, params, token))
    assert is_valid_signature(**(original | changes)) is False


@given(url=_urls, params=_params, token=_tokens, position=st.integers(0, 27))
def test_any_changed_signature_character_is_rejected(
    url: str, params: dict[str, str], token: str, position: int
) -> None:
    signature = compute_signature(url, params, token)
    replacement = "A" if signature[position] != "A" else "B"
    forged = signature[:position] + replacement + signature[position + 1 :]
    assert is_valid_signature(url, params, forged, token) is False
