"""Tenant isolation: every id-bearing route in /openapi.json answers another tenant's key with 404.

The routes are discovered from the schema, so a new route is covered the day it is added. The ids
put in each path are the first tenant's real ones, harvested from its own list routes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from smsrelay.services.secrets import SecretBox, generate_key
from smsrelay.services.tenants import create_key, create_tenant
from tests.integration.conftest import Api

METHODS = ("get", "put", "post", "patch", "delete")
PHONE = "+15005550006"
BODY = "isolation probe: tenant A's private text"
PARAM = re.compile(r"{([^}]+)}")
# Fields that change by themselves between two reads.
VOLATILE = frozenset({"lastusedat"})
# Paths whose parameters name a slot in the caller's own namespace, not another tenant's data:
# any tenant may PUT its own price for twilio/US. tests/integration/test_prices.py shows that
# one tenant's override neither shows nor applies nor can be deleted for another.
# Likewise a tenant's own rate for a sender (test_sender_throughput_api.py, test_pacing_dispatch.py
# show another tenant's rate neither shows nor paces).
OWN_NAMESPACE = frozenset({"/api/prices/{provider}/{country}", "/api/senders/{sender}/throughput"})
# Operations that create or replace the caller's own entry in such a slot: any tenant may PUT its
# own twilio account. The other operations on the slot are probed with tenant A's filled slot
# (SLOTS); tests/integration/test_provider_configs.py shows another tenant's PUT leaves A's alone.
OWN_SLOT_WRITES = frozenset({("put", "/api/providers/{provider}")})
SLOTS = {"provider": "twilio"}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def params(self) -> list[str]:
        return PARAM.findall(self.path)


def _normal(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def keyed_operations(schema: dict[str, Any]) -> list[Operation]:
    """Every operation that authenticates with an API key."""
    return [
        Operation(method, path, spec)
        for path, item in schema["paths"].items()
        for method, spec in item.items()
        if method in METHODS and any("HTTPBearer" in s for s in spec.get("security", []))
    ]


def _leaves(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(normalised field name, string value) for every string in a JSON document."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _leaves(item, _normal(str(name)))
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, key)
    elif isinstance(value, str) and key:
        yield key, value


async def read_everything(api: Api, schema: dict[str, Any]) -> dict[str, Any]:
    """The answers of every parameterless GET route for this key (the tenant's visible data)."""
    answers: dict[str, Any] = {}
    for operation in keyed_operations(schema):
        if operation.method == "get" and not operation.params:
            response = await api.client.get(operation.path, headers=api.auth())
            if response.status_code == 200:
                answers[operation.path] = response.json()
    return answers


def _stable(answers: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(pair for pair in _leaves(answers) if pair[0] not in VOLATILE)


def value_for(param: str, harvested: list[tuple[str, str]]) -> str | None:
    """Tenant A's value for a path parameter: same field name, else a field that contains it."""
    wanted = _normal(param)
    exact = [value for name, value in harvested if name == wanted]
    near = [value for name, value in harvested if len(wanted) > 3 and wanted in name]
    return (exact or near or [None])[0]


def example(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """A small value valid for a JSON schema (enough to get past request validation)."""
    if "$ref" in schema:
        return example(components[schema["$ref"].rsplit("/", 1)[1]], components)
    for choice in ("anyOf", "oneOf", "allOf"):
        if choice in schema:
            options = [s for s in schema[choice] if s.get("type") != "null"]
            return example(options[0], components)
    if "const" in schema or "enum" in schema or "default" in schema:
        return schema.get("const", schema.get("enum", [schema.get("default")])[0])
    return _typed_example(schema, components)


def _typed_example(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    kind = schema.get("type", "object")
    if kind == "object":
        properties = schema.get("properties", {})
        return {k: example(properties[k], components) for k in schema.get("required", [])}
    if kind == "array":
        return [example(schema.get("items", {}), components)] * schema.get("minItems", 0)
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if schema.get("format") == "date-time":
        return (datetime.now(UTC) + timedelta(days=1)).isoformat()
    return "x" * max(1, schema.get("minLength", 1))


def request_body(operation: Operation, schema: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.spec.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    components = schema.get("components", {}).get("schemas", {})
    body: dict[str, Any] = example(content["application/json"]["schema"], components)
    return body


async def _seed(api: Api) -> None:
    """Give tenant A data behind its routes: a message, a second key, its own Twilio account."""
    sent = await api.send(to=PHONE, message=BODY, tags=["isolation"])
    assert sent.status_code == 202, sent.text
    await create_key(api.container.db, api.tenant_id, name="second", scopes=frozenset({"read"}))
    listed = await api.client.post("/api/lists", json={"name": "isolation"}, headers=api.auth())
    assert listed.status_code == 201, listed.text
    api.container.provider_configs.box = SecretBox(generate_key())
    account = {"accountSid": "AC" + "4e" * 16, "authToken": "6a" * 16, "fromNumber": PHONE}
    saved = await api.client.put("/api/providers/twilio", json=account, headers=api.auth())
    assert saved.status_code == 200, saved.text


async def test_every_id_bearing_route_hides_other_tenants_data(api: Api) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    await _seed(api)
    before = await read_everything(api, schema)
    harvested = _stable(before)
    other = await create_tenant(api.container.db, "intruder")  # every scope, so 404 not 403

    checked, with_real_id = 0, 0
    for operation in keyed_operations(schema):
        if not operation.params or operation.path in OWN_NAMESPACE:
            continue
        if (operation.method, operation.path) in OWN_SLOT_WRITES:
            continue
        values = {p: SLOTS.get(p) or value_for(p, harvested) for p in operation.params}
        with_real_id += all(v is not None for v in values.values())
        path = operation.path.format(**{p: v or f"unknown_{p}" for p, v in values.items()})
        response = await api.client.request(
            operation.method.upper(),
            path,
            json=request_body(operation, schema),
            headers=api.auth(other.api_key),
        )
        _assert_hidden(response, operation, values, harvested)
        checked += 1

    print(
        f"isolation: {checked} id-bearing routes checked, {with_real_id} with tenant A's real ids"
    )
    assert checked >= 2 and with_real_id >= 2
    assert _stable(await read_everything(api, schema)) == harvested


def _assert_hidden(
    response: httpx.Response,
    operation: Operation,
    values: dict[str, str | None],
    harvested: list[tuple[str, str]],
) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    assert response.status_code == 404, f"{label}: {response.status_code} {response.text}"
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == "not_found", label
    identifying = {value for name, value in harvested if name.endswith("id") or name == "prefix"}
    private = ({PHONE, BODY} | identifying) - {v for v in values.values() if v}
    leaked = sorted(value for value in private if value in response.text)
    assert not leaked, f"{label} leaked {leaked}"


def test_examples_satisfy_the_common_schema_shapes() -> None:
    components = {"Body": {"type": "object", "required": ["n", "k"], "properties": {}}}
    components["Body"]["properties"] = {
        "n": {"type": "string", "minLength": 3},
        "k": {"anyOf": [{"type": "array", "items": {"enum": ["a"]}, "minItems": 1}, {}]},
    }
    assert example({"$ref": "#/components/schemas/Body"}, components) == {"n": "xxx", "k": ["a"]}
