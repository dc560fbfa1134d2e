"""The short form of the delivery proof: faults and SIGKILLed workers lose and repeat nothing."""

from __future__ import annotations

import os

import pytest

from tests.chaos_harness import ChaosConfig, run_chaos

MESSAGES = int(os.environ.get("SMSRELAY_CHAOS_MESSAGES", "2000"))


@pytest.mark.e2e
async def test_nothing_lost_nothing_twice_no_regression_under_faults_and_kills(
    database_url: str, db: object
) -> None:
    result = await run_chaos(database_url, ChaosConfig(messages=MESSAGES))
    print(result)
    assert result.kills >= 2
    assert result.faults.get("5xx-after-accept", 0) > 0 and result.faults.get("429", 0) > 0
    assert result.faults.get("timeout", 0) > 0
    assert result.callbacks_duplicated > 0
    assert result.lost == 0, result.final_by_status
    assert result.accepted_twice == 0
    assert result.regressions == 0
