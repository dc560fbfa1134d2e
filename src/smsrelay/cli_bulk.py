"""The `smsrelay bulk` commands: send a CSV through the HTTP API (resumable), show a bulk."""

from __future__ import annotations

import asyncio
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from smsrelay.bulk_upload import (
    BulkClient,
    Options,
    ReadStats,
    State,
    UploadError,
    check_file,
    chunk_body,
    fingerprint,
    progress_of,
    read_chunks,
)
from smsrelay.logs import mask_phone

bulk_app = typer.Typer(help="Broadcasts: send a CSV to many recipients, follow its progress.")
DEFAULT_URL = "http://127.0.0.1:8000"
SHOWN_REJECTIONS = 5  # per chunk; the counts cover all
UrlOption = Annotated[str, typer.Option(help="The smsrelay server's base URL.")]
KeyOption = Annotated[
    str | None,
    typer.Option("--api-key", envvar="SMSRELAY_API_KEY", help="API key (or SMSRELAY_API_KEY)."),
]


class Category(StrEnum):
    transactional = "transactional"
    marketing = "marketing"


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(code)


def _key(api_key: str | None) -> str:
    if not api_key:
        raise _fail("give --api-key or set SMSRELAY_API_KEY (smsrelay tenants create NAME)", 2)
    return api_key


@bulk_app.command("send")
def send(
    file: Annotated[
        Path, typer.Argument(help="CSV with a phone (or to) column; others: variables.")
    ],
    message: Annotated[str, typer.Option("--message", "-m", help="Text; {{column}} fills in.")],
    category: Annotated[Category, typer.Option(help="Message category.")] = Category.transactional,
    sender_id: Annotated[str | None, typer.Option("--sender-id", help="Sender to use.")] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
    chunk_size: Annotated[int, typer.Option(min=1, max=100_000, help="Rows per request.")] = 5000,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow until done.")] = True,
    poll: Annotated[float, typer.Option(min=0.1, help="Seconds between progress polls.")] = 1.0,
    patience: Annotated[
        float, typer.Option(min=1, help="Stop following after this many seconds.")
    ] = 600.0,
) -> None:
    """Send MESSAGE to every row of FILE, in chunks; run it again after Ctrl-C to resume."""
    if not file.is_file():
        raise _fail(f"{file} not found (give the path of a CSV file)", 2)
    options = Options(message, category.value, sender_id, chunk_size)
    try:
        check_file(file, options)
        state = State.load(file, fingerprint(file, options))
        follow = (poll, patience) if wait else None
        asyncio.run(_send(file, options, state, url, _key(api_key), follow))
    except UploadError as exc:
        raise _fail(str(exc)) from None
    except UnicodeDecodeError:
        raise _fail(f"{file} is not UTF-8 text; save it as UTF-8 CSV", 2) from None
    except KeyboardInterrupt:
        typer.secho(
            "\ninterrupted: run the same command again to resume (nothing is sent twice)",
            fg="yellow",
            err=True,
        )
        raise typer.Exit(130) from None


async def _send(
    file: Path,
    options: Options,
    state: State,
    url: str,
    key: str,
    follow: tuple[float, float] | None,
) -> None:
    console = Console(stderr=True)
    if state.chunks:
        console.print(
            f"resuming: {len(state.chunks)} chunk(s) already accepted ({state.path.name})"
        )
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        client = BulkClient(session, url, key)
        with _progress(console) as progress:
            tasks = {"accepted": progress.add_task("accepted", total=None)}
            progress.update(tasks["accepted"], completed=state.accepted)
            stats = ReadStats()
            await _upload(client, file, options, state, progress, tasks, stats)
            repeated = (
                f", {stats.duplicates} repeated number(s) sent once" if stats.duplicates else ""
            )
            console.print(
                f"accepted {state.accepted}, rejected {state.rejected}{repeated}; "
                f"bulk ids: {_bulk_ids(state)}"
            )
            if follow is not None and state.bulk_ids:
                await _follow(client, state, progress, tasks, *follow)


_BARS = ("accepted", "sent", "delivered", "failed")
SHOWN_IDS = 5


def _bulk_ids(state: State) -> str:
    """The run's bulk ids, or how many there are and where they are listed."""
    ids = state.bulk_ids
    if len(ids) <= SHOWN_IDS:
        return ", ".join(ids) or "none"
    return f"{len(ids)} bulks, listed in {state.path.name} (first {ids[0]})"


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=False,
    )


async def _upload(
    client: BulkClient,
    file: Path,
    options: Options,
    state: State,
    progress: Progress,
    tasks: dict[str, TaskID],
    stats: ReadStats,
) -> None:
    for index, recipients in enumerate(read_chunks(file, options.chunk_size, stats)):
        if str(index) in state.chunks:
            continue
        answer = await client.send_chunk(
            chunk_body(options, recipients), f"smsrelay-cli-{state.run}-{index}"
        )
        state.record(index, answer)
        progress.update(tasks["accepted"], completed=state.accepted)
        for refused in answer.get("rejected", [])[:SHOWN_REJECTIONS]:
            position = refused.get("index")
            row = recipients[position]["row"] if isinstance(position, int) else "?"
            shown = mask_phone(refused["to"]) or "no number"
            progress.console.print(
                f"  row {row} ({shown}): rejected, {refused['reason']} ({refused['message']})"
            )


async def _follow(
    client: BulkClient,
    state: State,
    progress: Progress,
    tasks: dict[str, TaskID],
    poll: float,
    patience: float,
) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + patience
    progress.update(tasks["accepted"], total=state.accepted)
    for name in _BARS[1:]:
        tasks[name] = progress.add_task(name, total=state.accepted)
    finished: dict[str, dict[str, Any]] = {}  # bulks with nothing left to change: not asked again
    while True:
        views = [finished.get(bulk_id) or await client.bulk(bulk_id) for bulk_id in state.bulk_ids]
        finished.update((view["bulkId"], view) for view in views if _finished(view))
        counts = progress_of(views)
        for name in ("sent", "delivered", "failed"):
            progress.update(tasks[name], completed=counts[name])
        if counts["unsent"] + counts["awaiting_report"] == 0:
            _print_outcome(progress.console, views)
            return
        if loop.time() > give_up:
            progress.console.print(
                f"stopped following after {patience:g} s: {counts['unsent']} not yet sent, "
                f"{counts['awaiting_report']} awaiting a delivery report; `smsrelay bulk status "
                "BULK_ID` shows later progress"
            )
            _print_outcome(progress.console, views)
            return
        await asyncio.sleep(poll)


def _finished(view: dict[str, Any]) -> bool:
    open_ = sum(view["counts"].get(s, 0) for s in ("pending", "sending", "sent"))
    written = view["status"] == "canceled" or view["expandedCount"] == view["acceptedCount"]
    return written and view["status"] in ("ready", "canceled") and open_ == 0


# What each way of not being delivered means, for the line printed at the end.
_NOT_DELIVERED = {
    "undelivered": "the carrier could not deliver",
    "failed": "refused by the provider or by smsrelay's checks",
    "suppressed": "not sent: opted out, no consent for marketing, or quiet hours",
    "expired": "not sent within validitySeconds",
    "canceled": "canceled",
}


def _print_outcome(console: Console, views: list[dict[str, Any]]) -> None:
    """How many ended each way, naming why the 'failed' bar counts what it counts."""
    totals: dict[str, int] = {}
    for view in views:
        for status, count in view["counts"].items():
            totals[status] = totals.get(status, 0) + count
    parts = [f"{totals[s]} {s} ({why})" for s, why in _NOT_DELIVERED.items() if totals.get(s)]
    if parts:
        console.print(
            f"delivered {totals.get('delivered', 0)}; "
            + "; ".join(parts)
            + " — GET /api/sms/outbox?status=… lists them with their reasons"
        )


@bulk_app.command("status")
def status(
    bulk_id: Annotated[str, typer.Argument(help="The bulkId a send printed.")],
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
) -> None:
    """Print a bulk's progress (counts by status, cost so far) as JSON."""
    key = _key(api_key)

    async def main() -> dict[str, Any]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            return await BulkClient(session, url, key).bulk(bulk_id)

    try:
        typer.echo(json.dumps(asyncio.run(main()), indent=2))
    except UploadError as exc:
        raise _fail(str(exc)) from None
