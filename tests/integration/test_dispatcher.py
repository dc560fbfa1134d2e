"""The dispatcher against a fake provider: every outcome class, leases, reconciliation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smsrelay.dispatch.dispatcher import DispatchConfig
from smsrelay.dispatch.retry import RetryPolicy
from smsrelay.domain.status import Status
from smsrelay.providers.base import Outcome, ProviderError, SendResult
from smsrelay.services.delivery import StatusUpdate, apply_status_update
from smsrelay.services.errors import NotFound
from smsrelay.services.resend import ResendRefused, resend_message
from smsrelay.store.database import Database
from tests.integration.world import Clock, World


@pytest.fixture
async def world(db: Database) -> World:
    config = DispatchConfig(
        lease_seconds=30, reconcile_after_seconds=5, status_check_after_seconds=600
    )
    policy = RetryPolicy(max_attempts=3, base_delay=1, max_delay=10)
    return await World.create(db, Clock(), config=config, policy=policy)


def _error(code: int) -> ProviderError:
    return ProviderError(message=f"error {code}", code=code, more_info=f"https://x/{code}")


async def test_accepted_message_is_sent_with_the_provider_id(world: World) -> None:
    outbox_id = await world.submit()
    await world.dispatcher().process_all()
    row = await world.row(outbox_id)
    assert row["status"] == "sent" and str(row["provider_message_id"]).startswith("FK")
    assert row["sent_at"] == world.clock.now
    assert await world.kinds(outbox_id) == ["created", "attempt_started", "provider_accepted"]
    assert world.provider.requests[0].idempotency_key == outbox_id


async def test_retryable_failure_waits_then_retries(world: World) -> None:
    world.provider.then(SendResult(Outcome.RETRYABLE, error=_error(20429), retry_after_seconds=7))
    outbox_id = await world.submit()
    dispatcher = world.dispatcher()
    await dispatcher.process_all()
    row = await world.row(outbox_id)
    assert row["status"] == "pending" and row["retry_count"] == 1
    assert row["next_attempt_at"] >= world.clock.now + timedelta(seconds=7)  # type: ignore[operator]
    await dispatcher.process_all()
    assert len(world.provider.requests) == 1  # not due yet
    world.clock.advance(11)
    await dispatcher.process_all()
    assert (await world.row(outbox_id))["status"] == "sent"
    assert len(world.provider.requests) == 2


async def test_retryable_failures_stop_at_the_attempt_cap(world: World) -> None:
    world.provider.then(*[SendResult(Outcome.RETRYABLE, error=_error(30001))] * 3)
    outbox_id = await world.submit()
    dispatcher = world.dispatcher()
    for _ in range(4):
        await dispatcher.process_all()
        world.clock.advance(20)
    row = await world.row(outbox_id)
    assert row["status"] == "failed" and row["error_code"] == "30001"
    assert len(world.provider.requests) == 3


@pytest.mark.parametrize("outcome", [Outcome.PERMANENT, Outcome.OPTED_OUT])
async def test_permanent_failures_are_final_at_once(world: World, outcome: Outcome) -> None:
    world.provider.then(SendResult(outcome, error=_error(21211)))
    outbox_id = await world.submit()
    dispatcher = world.dispatcher()
    await dispatcher.process_all()
    world.clock.advance(3600)
    await dispatcher.process_all()
    row = await world.row(outbox_id)
    assert row["status"] == "failed" and row["error_code"] == "21211"
    assert row["error_more_info"] == "https://x/21211"
    assert len(world.provider.requests) == 1


async def test_ambiguous_send_is_reconciled_not_resent(world: World) -> None:
    world.provider.then(SendResult(Outcome.AMBIGUOUS, error=_error(20500)))
    outbox_id = await world.submit()
    dispatcher = world.dispatcher()
    await dispatcher.process_all()
    assert (await world.row(outbox_id))["status"] == "sending"
    world.clock.advance(6)
    await dispatcher.process_all()
    row = await world.row(outbox_id)
    assert row["status"] == "sent" and row["provider_message_id"] in world.provider.accepted
    assert len(world.provider.requests) == 1
    assert "attempt_ambiguous" in await world.kinds(outbox_id)


async def test_ambiguous_send_the_provider_never_got_is_sent_again(world: World) -> None:
    world.provider.ambiguous_sent = False
    world.provider.then(SendResult(Outcome.AMBIGUOUS, error=_error(20500)))
    outbox_id = await world.submit()
    dispatcher = world.dispatcher()
    await dispatcher.process_all()
    world.clock.advance(6)
    await dispatcher.process_all()  # reconcile: not found yet → ask again after a lease
    assert (await world.row(outbox_id))["status"] == "sending"
    assert len(world.provider.requests) == 1
    world.clock.advance(31)
    await dispatcher.process_all()  # still not found → retry scheduled
    world.clock.advance(20)
    await dispatcher.process_all()
    assert (await world.row(outbox_id))["status"] == "sent"
    assert len(world.provider.requests) == 2
    assert len(world.provider.accepted) == 1
    assert "reconcile_not_found" in await world.kinds(outbox_id)


async def test_a_stalled_senders_late_acceptance_cancels_the_scheduled_retry(
    world: World,
) -> None:
    outbox_id = await world.submit()
    stalled, other = world.dispatcher("stalled"), world.dispatcher("other")
    row = await world.claim(stalled)
    world.clock.advance(31)  # the lease ran out while the stalled worker's request travelled
    await other.process_all()  # takes over: the provider has no record yet
    world.clock.advance(31)
    await other.process_all()  # still none: a retry is scheduled
    assert (await world.row(outbox_id))["status"] == "pending"
    await stalled.record_result(row, SendResult(Outcome.ACCEPTED, provider_message_id="SMlate"))
    after = await world.row(outbox_id)
    assert (after["status"], after["provider_message_id"]) == ("sent", "SMlate")
    world.clock.advance(60)
    await other.process_all()
    assert world.provider.requests == []  # nothing sent again
    assert "late_acceptance" in await world.kinds(outbox_id)


async def test_a_worker_that_lost_its_lease_cannot_change_the_new_owners_attempt(
    world: World,
) -> None:
    outbox_id = await world.submit()
    stalled, other = world.dispatcher("stalled"), world.dispatcher("other")
    row = await world.claim(stalled)
    world.clock.advance(31)
    async with world.db.transaction() as connection:
        from smsrelay.store.claims import claim_expired

        await claim_expired(connection, other.name, world.clock.now, timedelta(seconds=30), 5)
    await stalled.record_result(row, SendResult(Outcome.AMBIGUOUS, error=_error(20500)))
    current = await world.row(outbox_id)
    assert current["lease_owner"] == other.name and current["needs_reconcile"] == 0


async def test_a_dead_workers_claim_is_taken_over_and_reconciled(world: World) -> None:
    outbox_id = await world.submit()
    dead = world.dispatcher("dead")
    # The dead worker claimed the message and the provider accepted it, but the worker died
    # before recording the answer.
    row = await world.claim(dead)
    await world.provider.send(dead._request(row))
    survivor = world.dispatcher("survivor")
    await survivor.process_all()
    assert (await world.row(outbox_id))["status"] == "sending"  # lease still valid
    world.clock.advance(31)
    await survivor.process_all()
    row2 = await world.row(outbox_id)
    assert row2["status"] == "sent" and row2["lease_owner"] is None
    assert len(world.provider.requests) == 1


async def test_expired_message_is_never_sent(world: World) -> None:
    outbox_id = await world.submit(validity_seconds=60)
    world.clock.advance(61)
    await world.dispatcher().process_all()
    assert (await world.row(outbox_id))["status"] == "expired"
    assert world.provider.requests == []


async def test_validity_is_passed_to_the_provider(world: World) -> None:
    await world.submit(validity_seconds=600)
    await world.dispatcher().process_all()
    assert world.provider.requests[0].validity_seconds == 600


async def test_scheduled_message_waits_for_its_time(world: World) -> None:
    outbox_id = await world.submit(scheduled_at=world.clock.now + timedelta(hours=1))
    dispatcher = world.dispatcher()
    await dispatcher.process_all()
    assert world.provider.requests == []
    world.clock.advance(3601)
    await dispatcher.process_all()
    assert (await world.row(outbox_id))["status"] == "sent"


async def test_unconfirmed_sent_message_is_checked_with_the_provider(world: World) -> None:
    outbox_id = await world.submit()
    dispatcher = world.dispatcher()
    await dispatcher.process_all()
    sid = str((await world.row(outbox_id))["provider_message_id"])
    world.provider.report(sid, "undelivered", _error(30003))
    assert await dispatcher.check_unconfirmed() == 0  # too early
    world.clock.advance(601)
    assert await dispatcher.check_unconfirmed() == 1
    row = await world.row(outbox_id)
    assert row["status"] == "undelivered" and row["error_code"] == "30003"
    assert await dispatcher.check_unconfirmed() == 0  # final: never asked again


async def test_resend_requeues_until_the_cap(world: World) -> None:
    world.provider.then(*[SendResult(Outcome.PERMANENT, error=_error(30007))] * 3)
    outbox_id = await world.submit()
    dispatcher = world.dispatcher()
    await dispatcher.process_all()
    for attempt in (1, 2):
        entry = await resend_message(
            world.db, world.principal.tenant_id, outbox_id, cap=2, now=world.clock.now
        )
        assert entry.status is Status.PENDING and entry.retry_count == attempt
        await dispatcher.process_all()
        assert (await world.row(outbox_id))["status"] == "failed"
    before = await world.row(outbox_id)
    with pytest.raises(ResendRefused, match="cap is 2"):
        await resend_message(world.db, world.principal.tenant_id, outbox_id, cap=2)
    assert await world.row(outbox_id) == before


async def test_resend_refuses_what_is_not_failed_or_opted_out(world: World) -> None:
    outbox_id = await world.submit()
    with pytest.raises(ResendRefused, match="pending"):
        await resend_message(world.db, world.principal.tenant_id, outbox_id, cap=3)
    await world.dispatcher().process_all()
    world.provider.then(SendResult(Outcome.OPTED_OUT, error=_error(21610)))
    opted = await world.submit(body="again")
    await world.dispatcher().process_all()
    with pytest.raises(ResendRefused, match="opted out"):
        await resend_message(world.db, world.principal.tenant_id, opted, cap=3)
    with pytest.raises(NotFound):
        await resend_message(world.db, "another-tenant", opted, cap=3)


async def test_late_callback_for_the_replaced_send_does_not_touch_the_resend(
    world: World,
) -> None:
    world.provider.then(SendResult(Outcome.ACCEPTED, provider_message_id="SMold"))
    outbox_id = await world.submit()
    dispatcher = world.dispatcher()
    await dispatcher.process_all()
    await apply_status_update(
        world.db,
        StatusUpdate(
            "SMold",
            Status.UNDELIVERED,
            "undelivered",
            "k1",
            world.clock.now,
            outbox_id=outbox_id,
            error=_error(30003),
        ),
    )
    await resend_message(world.db, world.principal.tenant_id, outbox_id, cap=3, now=world.clock.now)
    late = StatusUpdate(
        "SMold", Status.DELIVERED, "delivered", "k2", world.clock.now, outbox_id=outbox_id
    )
    assert await apply_status_update(world.db, late) == "stale"
    assert (await world.row(outbox_id))["status"] == "pending"


async def test_callback_that_beats_the_send_record_is_applied_after_it(world: World) -> None:
    world.provider.then(SendResult(Outcome.ACCEPTED, provider_message_id="SMfast"))
    outbox_id = await world.submit()
    early = StatusUpdate("SMfast", Status.DELIVERED, "delivered", "k1", world.clock.now)
    assert await apply_status_update(world.db, early) == "unmatched"
    await world.dispatcher().process_all()
    row = await world.row(outbox_id)
    assert row["status"] == "delivered"


async def test_ambiguous_send_to_a_provider_that_cannot_be_asked_is_never_resent(
    world: World,
) -> None:
    world.provider.can_look_up_messages = False
    world.provider.then(SendResult(Outcome.AMBIGUOUS, error=_error(20500)))
    outbox_id = await world.submit()
    dispatcher = world.dispatcher(unresolved_after_seconds=60)
    await dispatcher.process_all()
    for _ in range(5):
        world.clock.advance(6)
        await dispatcher.process_all()
    assert (await world.row(outbox_id))["status"] == "sending"
    world.clock.advance(60)
    await dispatcher.process_all()
    row = await world.row(outbox_id)
    assert row["status"] == "failed" and "cannot be asked" in str(row["error_message"])
    assert len(world.provider.requests) == 1


async def test_a_claim_too_old_to_send_safely_is_released_not_sent(world: World) -> None:
    outbox_id = await world.submit()
    slow = world.dispatcher("slow")
    row = await world.claim(slow)
    world.clock.advance(16)  # the worker stalled for more than half its lease
    await slow._send(row)
    assert world.provider.requests == []
    released = await world.row(outbox_id)
    assert released["status"] == "pending" and released["attempt_count"] == 0
    await world.dispatcher().process_all()
    assert (await world.row(outbox_id))["status"] == "sent"
    assert len(world.provider.requests) == 1
