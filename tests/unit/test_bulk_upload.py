"""A `smsrelay bulk send` state file is only resumed by the run that wrote it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from smsrelay.bulk_upload import Options, State, UploadError, fingerprint


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
