"""`smsrelay bulk send`: a state file is only resumed by the run that wrote it; a 429's
Retry-After is waited out within bounds."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from smsrelay.bulk_upload import Options, State, UploadError, _retry_after, fingerprint


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.csv"
    path.write_text("phone\n+14155550101\n+14155550102\n")
    return path


def _earlier_fingerprint(csv_path: Path, options: Options) -> str:
    """The run id an smsrelay that cut files the earlier way gave this file and options."""
    digest = hashlib.sha256(csv_path.read_bytes())
    described = [options.message, options.category, options.sender_id, options.chunk_size]
    digest.update(json.dumps(described).encode())
    return digest.hexdigest()[:32]


def test_a_state_file_from_an_earlier_way_of_chunking_is_refused(tmp_path: Path) -> None:
    csv_path, options = _csv(tmp_path), Options(message="Hi")
    state = State.load(csv_path, _earlier_fingerprint(csv_path, options))
    state.record(0, {"bulkId": "blk_1", "acceptedCount": 2, "rejectedCount": 0})
    with pytest.raises(UploadError, match="earlier smsrelay"):
        State.load(csv_path, fingerprint(csv_path, options))


def test_the_same_run_resumes(tmp_path: Path) -> None:
    csv_path, options = _csv(tmp_path), Options(message="Hi")
    run = fingerprint(csv_path, options)
    State.load(csv_path, run).record(0, {"bulkId": "blk_1", "acceptedCount": 2})
    assert State.load(csv_path, run).accepted == 2
    with pytest.raises(UploadError):
        State.load(csv_path, fingerprint(csv_path, Options(message="Hello")))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5", 5.0),
        ("0", 0.1),
        ("3600", 30.0),
        (None, 1.0),
        ("", 1.0),
        ("soon", 1.0),
        ("nan", 1.0),
        ("inf", 1.0),
        ("-2", 0.1),
    ],
)
def test_a_429_is_waited_out_for_what_retry_after_asks_within_bounds(
    value: str | None, seconds: float
) -> None:
    assert _retry_after(value) == seconds


def test_retry_after_as_an_http_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=12), usegmt=True)
    assert 10 < _retry_after(later) <= 12
