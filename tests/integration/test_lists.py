"""Recipient lists: CRUD, a streamed CSV import with per-row errors, and a bulk send to a list."""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from smsrelay.services.consent import utcnow
from smsrelay.services.errors import InvalidRequest, NotFound
from smsrelay.services.list_import import import_members
from smsrelay.services.tenants import create_key
from smsrelay.store.tables import list_members, messages
from tests.integration.conftest import Api

CSV = "text/csv"


async def new_list(api: Api, name: str = "customers") -> str:
    response = await api.client.post("/api/lists", json={"name": name}, headers=api.auth())
    assert response.status_code == 201, response.text
    return str(response.json()["listId"])


async def upload(api: Api, list_id: str, text: str | bytes, **headers: str) -> httpx.Response:
    content = text.encode() if isinstance(text, str) else text
    return await api.client.post(
        f"/api/lists/{list_id}/import",
        content=content,
        headers=api.auth() | {"Content-Type": CSV} | headers,
    )


async def test_create_read_page_and_delete(api: Api) -> None:
    list_id = await new_list(api)
    other = await new_list(api, "  staff  ")
    shown = (await api.client.get(f"/api/lists/{list_id}", headers=api.auth())).json()
    assert shown["name"] == "customers" and shown["memberCount"] == 0
    page = (await api.client.get("/api/lists?limit=1", headers=api.auth())).json()
    assert [item["name"] for item in page["items"]] == ["staff"] and page["nextCursor"]
    rest = await api.client.get(f"/api/lists?cursor={page['nextCursor']}", headers=api.auth())
    assert [item["listId"] for item in rest.json()["items"]] == [list_id]

    await upload(api, other, "phone\n+14155550100\n")
    deleted = await api.client.delete(f"/api/lists/{other}", headers=api.auth())
    assert deleted.status_code == 204
    gone = await api.client.get(f"/api/lists/{other}", headers=api.auth())
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    again = await api.client.delete(f"/api/lists/{other}", headers=api.auth())
    assert again.status_code == 404


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
async def test_a_bad_name_is_422(api: Api, name: str) -> None:
    response = await api.client.post("/api/lists", json={"name": name}, headers=api.auth())
    assert response.status_code == 422 and "name" in response.json()["error"]["message"]


async def test_import_reports_row_errors_masked_and_merges_duplicates(api: Api) -> None:
    list_id = await new_list(api)
    text = (
        "\ufeffName,Phone,city\n"  # a BOM, any case, any column order
        "Ada,+14155550100,Paris\n"
        "Bo,+442079460000,London\n"  # a landline
        '"Cy, Jr.","+1 (415) 555-0101","New\nYork"\n'  # quoted comma and newline
        "Di,not-a-phone,Rome\n"
        "\n"
        "Ed,+14155550100,Lyon\n"  # the same number again: merged, the last row wins
        "Fi,+14155550102\n"  # too few fields
    )
    response = await upload(api, list_id, text)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rows"] == 6 and report["imported"] == 3 and report["duplicates"] == 1
    assert report["memberCount"] == 2 and report["rejectedCount"] == 3
    errors = {e["row"]: e for e in report["errors"]}
    assert set(errors) == {3, 5, 8}
    assert errors[3]["reason"] == "landline" and errors[3]["value"] == "+4*******0000"
    assert "+442079460000" not in response.text
    assert errors[5]["reason"] == "invalid_number" and errors[8]["reason"] == "wrong_columns"

    members = (await api.client.get(f"/api/lists/{list_id}/members", headers=api.auth())).json()
    assert [(m["phone"], m["variables"]) for m in members["items"]] == [
        ("+14155550100", {"Name": "Ed", "city": "Lyon"}),
        ("+14155550101", {"Name": "Cy, Jr.", "city": "New\nYork"}),
    ]
    page = await api.client.get(f"/api/lists/{list_id}/members?limit=1", headers=api.auth())
    cursor = page.json()["nextCursor"]
    second = await api.client.get(
        f"/api/lists/{list_id}/members?limit=1&cursor={cursor}", headers=api.auth()
    )
    assert second.json()["items"][0]["phone"] == "+14155550101"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ("", 422, "empty"),
        ("name,city\nAda,Paris\n", 422, "phone column"),
        ("phone;name\n+14155550100;Ada\n", 422, "separated by semicolons: save the file"),
        ("phone,,x\n+14155550100,a,b\n", 422, "column names"),
        ("phone,Phone\n+14155550100,a\n", 422, "column names"),
        (b"phone\n+1415555\xff0100\n", 422, "UTF-8"),
        ("phone,note\n+14155550100," + "a" * 200_000 + "\n", 422, "at most 1000 characters"),
    ],
)
async def test_a_file_wrong_as_a_whole_is_refused(
    api: Api, body: str | bytes, status: int, says: str
) -> None:
    list_id = await new_list(api)
    response = await upload(api, list_id, body)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]["message"]


async def test_rows_before_a_fault_in_the_file_are_kept_as_the_error_says(api: Api) -> None:
    list_id = await new_list(api)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"phone\n+14155550100\n+14155550101\n"
        yield b"+1415\xff\n"

    with pytest.raises(InvalidRequest, match="were kept"):
        await import_members(api.container.db, api.tenant_id, list_id, chunks(), utcnow())
    shown = await api.client.get(f"/api/lists/{list_id}", headers=api.auth())
    assert shown.json()["memberCount"] == 2


async def test_a_fault_inside_a_chunk_keeps_the_rows_before_it_and_names_its_row(
    api: Api,
) -> None:
    list_id = await new_list(api)
    good = "".join(f"+1415555{n:04d},P{n}\n" for n in range(100, 130))
    latin1 = b"phone,name\n" + good.encode() + b"+14155550199,J\xe9r\xf4me\n+14155550198,Z\n"
    response = await upload(api, list_id, latin1)  # one request body, one chunk
    assert response.status_code == 422
    error = response.json()["error"]
    assert "not UTF-8 text from row 32 on" in error["message"]
    assert "30 rows before it were kept" in error["message"]
    assert error["details"]["imported"] == 30
    shown = await api.client.get(f"/api/lists/{list_id}", headers=api.auth())
    assert shown.json()["memberCount"] == 30

    unclosed = await upload(api, list_id, 'phone,name\n+14155550140,"Ann\n+14155550141,Bo\n')
    assert unclosed.status_code == 422
    assert "row 2 opens a quote that is never closed" in unclosed.json()["error"]["message"]

    huge = "phone,name\n+14155550142,A\n+14155550143," + "y" * 200_000 + "\n"
    too_big = await upload(api, list_id, huge)
    assert too_big.status_code == 422 and "row 3 is not CSV" in too_big.json()["error"]["message"]
    assert too_big.json()["error"]["details"]["imported"] == 1


async def test_a_list_deleted_during_its_import_is_404_and_leaves_nothing(api: Api) -> None:
    list_id = await new_list(api)
    first = "".join(f"+1415555{index:04d}\n" for index in range(1000))  # one whole batch
    rest = "".join(f"+1415556{index:04d}\n" for index in range(10))

    async def chunks() -> AsyncIterator[bytes]:
        yield ("phone\n" + first).encode()
        yield b"+14155570000\n"  # read once the first batch has been written
        deleted = await api.client.delete(f"/api/lists/{list_id}", headers=api.auth())
        assert deleted.status_code == 204, deleted.text
        yield rest.encode()

    with pytest.raises(NotFound, match="deleted during the import"):
        await import_members(api.container.db, api.tenant_id, list_id, chunks(), utcnow())
    async with api.container.db.reading() as connection:
        left = (await connection.execute(select(list_members.c.phone))).all()
    assert left == []


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("page", "cursor"),
    [
        ("members", "AA"),  # a NUL
        ("members", _b64("+1\x00")),
        ("lists", _b64(json.dumps(["2026-01-01T00:00:00+00:00", "\x00"]))),
        ("lists", _b64(json.dumps(["2026-01-01T00:00:00", "lst_x"]))),  # no offset
    ],
)
async def test_a_forged_cursor_is_422_not_a_database_error(
    api: Api, page: str, cursor: str
) -> None:
    list_id = await new_list(api)
    path = f"/api/lists/{list_id}/members" if page == "members" else "/api/lists"
    response = await api.client.get(path, params={"cursor": cursor}, headers=api.auth())
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"] == {"field": "cursor"}


async def test_import_needs_csv_and_a_known_list(api: Api) -> None:
    list_id = await new_list(api)
    wrong = await upload(api, list_id, "phone\n", **{"Content-Type": "application/json"})
    assert wrong.status_code == 415 and "text/csv" in wrong.json()["error"]["message"]
    missing = await upload(api, "lst_nope", "phone\n+14155550100\n")
    assert missing.status_code == 404


async def test_a_nul_in_a_row_refuses_that_row_only(api: Api) -> None:
    list_id = await new_list(api)
    response = await upload(api, list_id, "phone,note\n+14155550100,a\x00b\n+14155550101,ok\n")
    assert response.status_code == 200
    report = response.json()
    assert report["memberCount"] == 1 and report["errors"][0]["reason"] == "bad_value"


async def test_import_streams_in_small_chunks(api: Api) -> None:
    """A record split across network chunks (even inside quotes) is read whole."""
    list_id = await new_list(api)
    text = b'phone,note\n+14155550100,"a,\nb"\n+14155550101,c\n'

    async def trickle() -> AsyncIterator[bytes]:
        for index in range(len(text)):
            yield text[index : index + 1]

    now = datetime.now(UTC)
    report = await import_members(api.container.db, api.tenant_id, list_id, trickle(), now)
    assert report.rows == 2 and report.member_count == 2 and not report.errors


async def test_a_quote_inside_a_plain_field_is_text_wherever_the_chunks_break(api: Api) -> None:
    """`5'11"` holds a quote as text (the csv module's reading); a later quoted field with a
    newline must still be read whole, not cut at that newline."""
    list_id = await new_list(api)
    text = (
        b"phone,note\n+14155550100,5'11\"\n+14155550101,x\n"
        b'+14155550102,"a\nb"\n+14155550103,"say ""hi"", ok"\n+14155550104,y\n'
    )
    expected = list(csv.reader(io.StringIO(text.decode(), newline="")))[1:]
    for size in (1, 2, 3, 5, 8, 13, len(text)):
        await api.client.delete(f"/api/lists/{list_id}", headers=api.auth())
        list_id = await new_list(api)

        async def pieces(size: int = size) -> AsyncIterator[bytes]:
            for index in range(0, len(text), size):
                yield text[index : index + size]

        report = await import_members(api.container.db, api.tenant_id, list_id, pieces(), utcnow())
        assert report.rows == 5 and not report.errors, (size, report)
        members = (
            await api.client.get(f"/api/lists/{list_id}/members", headers=api.auth())
        ).json()["items"]
        assert [[m["phone"], m["variables"]["note"]] for m in members] == expected, size


async def test_a_carriage_return_alone_ends_a_record_as_in_the_csv_module(api: Api) -> None:
    """Old Mac line ends: a quoted field that opens a line after a bare CR is still quoted."""
    list_id = await new_list(api)
    text = b'note,phone\r"a\nb",+14155550100\r"x",+14155550101\r'

    async def trickle() -> AsyncIterator[bytes]:
        for index in range(len(text)):
            yield text[index : index + 1]

    report = await import_members(api.container.db, api.tenant_id, list_id, trickle(), utcnow())
    assert report.rows == 2 and not report.errors, report
    members = (await api.client.get(f"/api/lists/{list_id}/members", headers=api.auth())).json()
    assert [m["variables"]["note"] for m in members["items"]] == ["a\nb", "x"]


async def test_a_stray_quote_does_not_make_the_import_quadratic(api: Api) -> None:
    """After an unmatched quote no record ends; the tail must not be rescanned per chunk."""
    list_id = await new_list(api)
    text = b"phone,note\n+14155550100,5'11\"\n" + (b"x" * 999 + b"\n") * 2000

    async def chunks() -> AsyncIterator[bytes]:
        for index in range(0, len(text), 8192):
            yield text[index : index + 8192]

    started = time.process_time()
    report = await import_members(api.container.db, api.tenant_id, list_id, chunks(), utcnow())
    assert time.process_time() - started < 2  # 2 MB; a rescan per 8 KiB chunk takes ~15 s
    assert report.rows == 2001 and report.member_count == 1


async def test_send_to_a_list_with_variables_from_its_columns(api: Api) -> None:
    list_id = await new_list(api)
    await upload(api, list_id, "to,firstName\n+14155550100,Ada\n+14155550101,\n")
    response = await api.client.post(
        "/api/sms/bulk",
        json={"listId": list_id, "message": "Hi {{firstName}}!"},
        headers=api.auth(),
    )
    assert response.status_code == 202, response.text
    (blank,) = response.json()["rejected"]  # an empty cell is no value, not ""
    assert blank["to"] == "+14155550101" and blank["reason"] == "missing_variable"
    response = await api.client.post(
        "/api/sms/bulk",
        json={"listId": list_id, "message": "Hi {{firstName}}!", "variables": {"firstName": "you"}},
        headers=api.auth(),
    )
    body = response.json()
    assert body["acceptedCount"] == 2
    assert api.container.bulk_expander is not None
    while await api.container.bulk_expander.run_once():
        pass
    async with api.container.db.reading() as connection:
        rows = (
            await connection.execute(
                select(messages.c.recipient, messages.c.body).where(
                    messages.c.bulk_id == body["bulkId"]
                )
            )
        ).all()
    assert sorted(rows) == [("+14155550100", "Hi Ada!"), ("+14155550101", "Hi you!")]
    shown = (await api.client.get(f"/api/sms/bulk/{body['bulkId']}", headers=api.auth())).json()
    assert shown["listId"] == list_id


async def test_a_retry_with_its_key_is_answered_after_the_list_is_deleted(api: Api) -> None:
    list_id = await new_list(api)
    await upload(api, list_id, "phone\n+14155550100\n")
    request = {"listId": list_id, "message": "hi"}
    headers = api.auth() | {"Idempotency-Key": "list-retry"}
    first = await api.client.post("/api/sms/bulk", json=request, headers=headers)
    assert first.status_code == 202, first.text
    await api.client.delete(f"/api/lists/{list_id}", headers=api.auth())
    again = await api.client.post("/api/sms/bulk", json=request, headers=headers)
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    fresh = await api.client.post("/api/sms/bulk", json=request, headers=api.auth())
    assert fresh.status_code == 404  # without the key it is a new request, judged now
    changed = request | {"message": "bye"}  # the key with another body replays nothing
    other = await api.client.post("/api/sms/bulk", json=changed, headers=headers)
    assert other.status_code == 404 and "Idempotent-Replayed" not in other.headers


async def test_an_empty_list_cannot_be_sent_to(api: Api) -> None:
    list_id = await new_list(api)
    response = await api.client.post(
        "/api/sms/bulk", json={"listId": list_id, "message": "hi"}, headers=api.auth()
    )
    assert response.status_code == 422 and "listId" in response.json()["error"]["message"]


async def test_scopes_read_for_reading_send_or_admin_for_writing(api: Api) -> None:
    list_id = await new_list(api)
    db, tenant = api.container.db, api.tenant_id
    reader = await create_key(db, tenant, name="r", scopes=frozenset({"read"}))
    admin = await create_key(db, tenant, name="a", scopes=frozenset({"admin"}))
    read_only: dict[str, Any] = api.auth(reader.api_key)
    assert (await api.client.get(f"/api/lists/{list_id}", headers=read_only)).status_code == 200
    refused = await api.client.post("/api/lists", json={"name": "x"}, headers=read_only)
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert "use a key that has 'send' or 'admin'" in error["message"]
    assert error["details"]["acceptedScopes"] == ["send", "admin"]
    allowed = await api.client.post(
        "/api/lists", json={"name": "x"}, headers=api.auth(admin.api_key)
    )
    assert allowed.status_code == 201
