"""Schemathesis over /openapi.json: no operation answers any generated request with a 5xx."""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import AuthContext, Case
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans

from smsrelay.api.app import create_app
from smsrelay.bootstrap import bootstrap
from smsrelay.config import load_settings
from smsrelay.domain.ids import new_id
from smsrelay.services.tenants import KEY_PREFIX, SCOPES, hash_key
from smsrelay.store.database import Database
from smsrelay.store.tenants import NewKey, TenantRepository

# Cases per operation and phase: enough to find crashes, small enough for ~30 s in all.
MAX_EXAMPLES = 30
GENERATION = {"max-examples": MAX_EXAMPLES, "database": "none"}


@dataclass
class Tally:
    """What the run did: cases per operation, and the 5xx answers among them."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)

    def record(self, case: Case, status: int) -> None:
        self.cases[case.operation.label] += 1
        self.statuses[status] += 1
        if status >= 500:
            self.server_errors.append(f"{case.operation.label} -> {status}")

    def summary(self) -> str:
        total = sum(self.cases.values())
        return (
            f"schemathesis: {len(self.cases)} operations, {total} cases, "
            f"{len(self.server_errors)} 5xx; statuses {dict(sorted(self.statuses.items()))}"
        )


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    result = Tally()
    yield result
    print(result.summary())


class AppSlot:
    """An ASGI app forwarding to the app the running test put in it (one per test, own database)."""

    def __init__(self) -> None:
        self.target: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.target is not None, "no app in the slot: use the `app_in_slot` fixture"
        await self.target(scope, receive, send)


def _openapi_document() -> dict[str, Any]:
    """The schema, read from an app that is never started (no database is touched)."""
    never_opened = Path(tempfile.gettempdir()) / "smsrelay-openapi-only.db"
    container = bootstrap(load_settings(database_url=f"sqlite:///{never_opened}"))
    document: dict[str, Any] = create_app(container).openapi()
    return document


SLOT = AppSlot()
# Known before any case is generated (Schemathesis builds some cases, with their auth, up front);
# each test's fresh database gets a tenant holding it.
API_KEY = f"{KEY_PREFIX}_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
schema = schemathesis.openapi.from_dict(
    _openapi_document(),
    config=SchemathesisConfig.from_dict({"generation": GENERATION}),
)
schema.app = SLOT


@schema.auth(refresh_interval=None)
class SlotKey:
    """A valid key with every scope (Schemathesis leaves it out for its no-auth cases)."""

    def get(self, case: Case, context: AuthContext) -> str:
        return API_KEY

    def set(self, case: Case, data: str, context: AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


async def _add_tenant_with_known_key(database_url: str) -> None:
    db = Database(database_url)
    now = datetime.now(UTC)
    key = NewKey(
        key_id=new_id("key"),
        tenant_id=new_id("ten"),
        prefix=API_KEY.split("_")[1],
        key_hash=hash_key(API_KEY),
        name="schemathesis",
        scopes=" ".join(SCOPES),
        created_at=now,
    )
    try:
        async with db.transaction() as connection:
            repository = TenantRepository(connection)
            await repository.add_tenant(key.tenant_id, "schemathesis", now)
            await repository.add_key(key)
    finally:
        await db.dispose()


@pytest.fixture
def app_in_slot(database_url: str, db: Database) -> Iterator[None]:
    """Put a fresh app in the slot; Schemathesis runs its lifespan on its own event loop."""
    app_settings = load_settings(
        database_url=database_url,
        public_url="http://testserver",
        api_key_rate_limit="1000000/second",
    )
    SLOT.target = create_app(bootstrap(app_settings), dispatch=False)
    asyncio.run(_add_tenant_with_known_key(database_url))
    try:
        yield
    finally:
        shutdown_lifespans()
        SLOT.target = None


@schema.parametrize()
# One app (and database) per operation, shared by its cases on purpose.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
def test_no_operation_answers_with_a_server_error(
    case: Case, app_in_slot: None, tally: Tally
) -> None:
    response = case.call()
    tally.record(case, response.status_code)
    case.validate_response(response, checks=[not_a_server_error])
