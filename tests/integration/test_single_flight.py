"""SingleFlight: callers asking for one key while its work runs share that one run."""

from __future__ import annotations

import asyncio

import pytest

from smsrelay.services.single_flight import SingleFlight


class Work:
    def __init__(self, result: str = "row", error: Exception | None = None) -> None:
        self.runs = 0
        self.release = asyncio.Event()
        self.result, self.error = result, error

    async def __call__(self) -> str:
        self.runs += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return f"{self.result} {self.runs}"


async def test_concurrent_callers_share_one_run_and_a_later_caller_starts_another() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work()
    callers = [asyncio.create_task(flights.run("t1", work)) for _ in range(10)]
    await asyncio.sleep(0)
    work.release.set()
    assert await asyncio.gather(*callers) == ["row 1"] * 10
    assert await flights.run("t1", work) == "row 2"


async def test_different_keys_run_separately() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work()
    work.release.set()
    assert await asyncio.gather(flights.run("a", work), flights.run("b", work)) == [
        "row 1",
        "row 2",
    ]


async def test_a_failure_reaches_every_caller_of_that_run() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work(error=LookupError("no such key"))
    callers = [asyncio.create_task(flights.run("k", work)) for _ in range(3)]
    await asyncio.sleep(0)
    work.release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert [type(r) for r in results] == [LookupError] * 3 and work.runs == 1


async def test_a_caller_that_gives_up_does_not_cancel_the_others() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work()
    first = asyncio.create_task(flights.run("k", work))
    second = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0)
    first.cancel()
    work.release.set()
    assert await second == "row 1"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_after_forget_the_next_caller_does_not_join_the_old_run() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    old, new = Work("old"), Work("new")
    stale = asyncio.create_task(flights.run("k", old))
    await asyncio.sleep(0)
    flights.forget("k")
    new.release.set()
    assert await flights.run("k", new) == "new 1"
    old.release.set()
    assert await stale == "old 1"
