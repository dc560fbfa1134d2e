"""ReadCache: what a request reads (here a status callback's account keys) is read once per few
seconds, not per request."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from smsrelay.services.provider_configs import Signer
from smsrelay.services.read_cache import ReadCache

KEY = ("twilio", "AC1")


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Reads:
    """The database, as the cache sees it: counts its reads and answers `signers`."""

    signers: list[Signer] = field(default_factory=lambda: [Signer("token-1", "tenant-a")])
    count: int = 0

    async def __call__(self) -> list[Signer]:
        self.count += 1
        await asyncio.sleep(0)
        return list(self.signers)


async def test_callbacks_within_the_ttl_read_once() -> None:
    clock, reads = Clock(), Reads()
    cache = ReadCache[tuple[str, str], list[Signer]](2.0, clock)
    together = await asyncio.gather(*(cache.get(KEY, reads) for _ in range(20)))
    assert all(found == reads.signers for found in together)
    clock.now += 1.9
    await cache.get(KEY, reads)
    assert reads.count == 1
    clock.now += 0.1
    await cache.get(KEY, reads)
    assert reads.count == 2


async def test_an_account_with_no_config_is_remembered_too() -> None:
    reads = Reads(signers=[])
    cache = ReadCache[tuple[str, str], list[Signer]](2.0, Clock())
    assert await cache.get(KEY, reads) == [] and await cache.get(KEY, reads) == []
    assert reads.count == 1


async def test_a_change_in_this_process_is_seen_at_once() -> None:
    reads = Reads()
    cache = ReadCache[tuple[str, str], list[Signer]](2.0, Clock())
    await cache.get(KEY, reads)
    reads.signers = [Signer("token-2", "tenant-a")]
    cache.clear()
    assert await cache.get(KEY, reads) == [Signer("token-2", "tenant-a")]


async def test_a_read_that_began_before_a_change_is_not_kept() -> None:
    reads = Reads()
    cache = ReadCache[tuple[str, str], list[Signer]](2.0, Clock())
    before = asyncio.create_task(cache.get(KEY, reads))
    await asyncio.sleep(0)  # reading the old keys
    cache.clear()
    reads.signers = [Signer("token-2", "tenant-a")]
    await before
    assert await cache.get(KEY, reads) == [Signer("token-2", "tenant-a")]
    assert reads.count == 2
