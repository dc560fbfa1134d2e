"""The STOP proof: a marketing broadcast sent slowly while a fifth of its recipients text STOP.

Afterwards no message reached the simulator for any number after that number's suppression was
committed. The size comes from SMSRELAY_STOP_PROOF_MESSAGES (default 1,000 messages with 200
STOPs, for CI; the issue's full run is 5,000 with 1,000 STOPs).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select

from smsrelay.domain.status import Status
from smsrelay.providers.twilio.signature import compute_signature
from smsrelay.services.consent import ConsentInput, record_consents
from smsrelay.services.submit import NewMessage, Principal, build_row
from smsrelay.store.tables import messages, suppressions
from tests.integration.conftest import LiveApp

StartApp = Callable[..., Awaitable[LiveApp]]
SIZE = int(os.environ.get("SMSRELAY_STOP_PROOF_MESSAGES", "1000"))
STOPS = SIZE // 5
LATENCY = 0.01  # seconds the simulator takes per create: with 4 sends at once, a slow broadcast
CHUNK = 500


@dataclass
class Run:
    app: LiveApp
    numbers: list[str]
    stopped: dict[str, datetime] = field(default_factory=dict)  # number -> webhook answered at
    raced: int = 0  # STOPs sent while that number's message was being sent
    sids: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def db(self) -> Any:
        return self.app.container.db


def recipients(count: int) -> list[str]:
    """UK mobile numbers: no country sending-hours rule, so the tenant's all-day window holds."""
    return [f"+447400{index:06d}" for index in range(count)]


async def opt_everyone_in(run: Run) -> None:
    entries = [
        ConsentInput(
            phone=phone,
            status="opted_in",
            category="marketing",
            source="https://acme.example/signup",
            method="web_form",
            consent_text="Yes, text me Acme offers. Reply STOP to end.",
        )
        for phone in run.numbers
    ]
    await record_consents(run.db, run.app.tenant_id, None, entries, datetime.now(UTC))
    hours = {"quietHoursStart": "00:00", "quietHoursEnd": "24:00"}
    response = await run.app.client.put("/api/consent-settings", json=hours, headers=run.app.auth())
    assert response.status_code == 200, response.text


async def queue_broadcast(run: Run) -> None:
    """Write the broadcast to the outbox in chunks, as a bulk submit would."""
    policy = run.app.container.submit_policy
    principal = Principal(run.app.tenant_id, None)
    for start in range(0, len(run.numbers), CHUNK):
        now = datetime.now(UTC)
        rows = [
            build_row(policy, principal, NewMessage(to, "Sale: 20% off", category="marketing"), now)
            for to in run.numbers[start : start + CHUNK]
        ]
        async with run.db.transaction() as connection:
            await connection.execute(insert(messages), rows)
        assert run.app.container.dispatcher is not None
        run.app.container.dispatcher.wake()


async def text_stop(run: Run, phone: str) -> None:
    """The person texts STOP; Twilio posts it, signed, to the inbound webhook."""
    url = f"{run.app.url}/api/webhooks/twilio/inbound"
    params = {
        "MessageSid": f"SM{next(run.sids):032x}",
        "AccountSid": run.app.simulator.account_sid,
        "From": phone,
        "To": "+15005550006",
        "Body": "STOP",
    }
    signature = compute_signature(url, params, run.app.simulator.auth_token)
    response = await run.app.client.post(
        url, data=params, headers={"X-Twilio-Signature": signature}, timeout=60
    )
    assert response.status_code == 200, response.text
    assert response.text.count("<Message>") == 1
    run.stopped[phone] = datetime.now(UTC)


async def pick(run: Run, rng: random.Random, index: int) -> str:
    """Every other STOP races a send in flight; the rest go to numbers not yet sent to."""
    if index % 2 == 0:
        async with run.db.transaction() as connection:
            sending = await connection.execute(
                select(messages.c.recipient).where(messages.c.status == Status.SENDING.value)
            )
            racing = [phone for phone in sending.scalars() if phone not in run.stopped]
        if racing:
            run.raced += 1
            return str(rng.choice(racing))
    sent = {m.to for m in run.app.simulator.state.accepted}
    return rng.choice([n for n in run.numbers if n not in run.stopped and n not in sent])


async def progress(run: Run, share: float) -> None:
    """Return once `share` of the broadcast has reached the simulator."""
    while True:
        if len(run.app.simulator.state.accepted) >= SIZE * share:
            return
        await asyncio.sleep(0.005)


async def send_stops_mid_run(run: Run) -> None:
    """STOP number i once 2% + i/STOPS * 80% of the broadcast has reached the simulator."""
    rng = random.Random(5)
    tasks = []
    for index in range(STOPS):
        await progress(run, 0.02 + 0.8 * index / STOPS)
        phone = await pick(run, rng, index)
        run.stopped[phone] = datetime.max.replace(tzinfo=UTC)  # taken; set when answered
        tasks.append(asyncio.create_task(text_stop(run, phone)))
    await asyncio.gather(*tasks)


async def wait_until_dispatched(run: Run, within: float = 600) -> dict[str, int]:
    async with asyncio.timeout(within):
        while True:
            async with run.db.transaction() as connection:
                result = await connection.execute(
                    select(messages.c.status, func.count()).group_by(messages.c.status)
                )
                counts = {status: count for status, count in result.all()}
            if not counts.get("pending") and not counts.get("sending"):
                return counts
            await asyncio.sleep(0.1)


async def committed_suppressions(run: Run) -> dict[str, datetime]:
    async with run.db.transaction() as connection:
        rows = await connection.execute(
            select(suppressions.c.phone, suppressions.c.created_at).where(
                suppressions.c.tenant_id == run.app.tenant_id
            )
        )
        return {phone: created for phone, created in rows.all()}


async def suppressed_recipients(run: Run) -> dict[str, str]:
    async with run.db.transaction() as connection:
        rows = await connection.execute(
            select(messages.c.recipient, messages.c.error_code).where(
                messages.c.status == Status.SUPPRESSED.value
            )
        )
        return {phone: code for phone, code in rows.all()}


async def test_nobody_who_texted_stop_gets_another_message(start_app: StartApp) -> None:
    app = await start_app(dispatch_concurrency=4, dispatch_batch_size=4, simulator_step_delay=3600)
    app.simulator.faults.latency = LATENCY
    run = Run(app, recipients(SIZE))
    await opt_everyone_in(run)
    started = asyncio.get_running_loop().time()
    await queue_broadcast(run)
    await send_stops_mid_run(run)
    counts = await wait_until_dispatched(run)
    elapsed = asyncio.get_running_loop().time() - started

    accepted = app.simulator.state.accepted
    committed = await committed_suppressions(run)
    blocked = await suppressed_recipients(run)
    assert set(committed) == set(run.stopped)
    late = [m for m in accepted if m.to in committed and m.received_at >= committed[m.to]]
    assert late == [], f"{len(late)} messages reached the provider after their STOP committed"
    after_answer = [
        m for m in accepted if m.to in run.stopped and m.received_at >= run.stopped[m.to]
    ]
    assert after_answer == []
    assert len({m.to for m in accepted}) == len(accepted), "a number was sent twice"
    assert set(blocked) <= set(run.stopped)
    assert len(blocked) + len(accepted) == SIZE
    assert counts == {"sent": len(accepted), "suppressed": len(blocked)}
    assert len(blocked) >= STOPS // 4  # the STOPs really landed mid-run
    sent_before_stop = sum(1 for m in accepted if m.to in run.stopped)
    print(
        f"\nSTOP proof: {SIZE} messages, {STOPS} STOPs ({run.raced} sent while that number's "
        f"message was in flight); blocked at dispatch {len(blocked)} "
        f"(hold {sum(c == 'opt_out_pending' for c in blocked.values())}, "
        f"suppression {sum(c == 'opted_out' for c in blocked.values())}); "
        f"sent before their STOP {sent_before_stop}; sent after STOP {len(late)}; "
        f"{elapsed:.1f}s"
    )
