"""A message's life after it is accepted: status steps on a timer, each with its callback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

from smsrelay.providers.simulator.callbacks import Callback, CallbackSender, build_callback
from smsrelay.providers.simulator.config import SimulatorConfig
from smsrelay.providers.simulator.resources import count_segments
from smsrelay.providers.simulator.state import SimulatedMessage, utc_now
from smsrelay.providers.simulator.tables import SEGMENT_PRICE_USD, STATUS_STEPS

Step = tuple[str, int | None]


def plan_steps(message: SimulatedMessage, config: SimulatorConfig) -> list[Step]:
    """The (status, error code) steps `message` will go through."""
    failure = config.failure_for(message.to)
    if failure is None:
        return [(status, None) for status in STATUS_STEPS["delivered"]]
    steps = STATUS_STEPS[failure.status]
    return [(s, failure.error_code if s == failure.status else None) for s in steps]


def posting_schedule(
    count: int, roll_reorder: bool, roll_duplicate: Callable[[], bool]
) -> list[list[int]]:
    """For each step, the callbacks (by step index) to post once that step is reached.

    Reordering holds the next-to-last callback back until after the last one; a duplicated
    callback is posted twice in a row.
    """
    schedule = [[index] for index in range(count)]
    if roll_reorder and count >= 2:
        schedule[-2], schedule[-1] = [], [count - 1, count - 2]
    return [[i for i in posts for _ in range(2 if roll_duplicate() else 1)] for posts in schedule]


def apply_step(message: SimulatedMessage, step: Step) -> None:
    """Move `message` to the step's status; a sent message gets its price."""
    message.status, message.error_code = step
    message.updated_at = utc_now()
    if message.status == "sent":
        price = Decimal(SEGMENT_PRICE_USD) * count_segments(message.body)
        message.price = f"-{price}"


class DeliveryRunner:
    """Runs one task per accepted message and cancels the unfinished ones on stop."""

    def __init__(self, config: SimulatorConfig, sender: CallbackSender) -> None:
        self._config = config
        self._sender = sender
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, message: SimulatedMessage) -> None:
        task = asyncio.create_task(self._run(message), name=f"simulator-delivery-{message.sid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, message: SimulatedMessage) -> None:
        steps = plan_steps(message, self._config)
        callbacks = [build_callback(message, status, error) for status, error in steps]
        schedule = self._schedule(len(steps))
        for step, posts in zip(steps, schedule, strict=True):
            await asyncio.sleep(self._config.step_delay)
            apply_step(message, step)
            await self._post(message, [callbacks[i] for i in posts])

    def _schedule(self, count: int) -> list[list[int]]:
        faults = self._config.faults
        reorder = faults.roll(faults.callback_reorder_rate)
        return posting_schedule(count, reorder, lambda: faults.roll(faults.callback_duplicate_rate))

    async def _post(self, message: SimulatedMessage, callbacks: list[Callback]) -> None:
        if message.status_callback is None:
            return
        for callback in callbacks:
            await self._sender.post(message.status_callback, callback)
