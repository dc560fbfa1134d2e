"""A request's form fields as `request.form()` gives them; a urlencoded body split in one pass.

Starlette hands a `application/x-www-form-urlencoded` body to python-multipart's streaming
parser, a callback per field piece: on a provider's status callback that was a third of the
route's time. The body is already whole here (`RefuseNul` buffers it), so `split_urlencoded`
splits it in one pass with the same result (tests/unit/test_forms.py compares the two on
generated bodies): fields split on `&` only, empty pieces skipped, a name without `=` kept with
an empty value, `+` a space, `%XX` decoded as UTF-8 (bad sequences replaced), other bytes as
Latin-1.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote

from starlette.requests import Request

URLENCODED = "application/x-www-form-urlencoded"
# Starlette's limit: a form with more fields is refused with a 400 by `request.form()`.
MAX_FIELDS = 1000


async def form_fields(request: Request) -> list[tuple[str, str]]:
    """Every (name, value) of the request's form, in the body's order, repeated names included.

    A urlencoded body is split here; any other content type (or a body over `MAX_FIELDS`,
    for Starlette's own 400) goes through `request.form()`.
    """
    if is_urlencoded(request.headers.get("content-type")):
        fields = split_urlencoded((await request.body()).decode("latin-1"))
        if len(fields) <= MAX_FIELDS:
            return fields
    form = await request.form()
    return [(name, str(value)) for name, value in form.multi_items()]


def is_urlencoded(content_type: str | None) -> bool:
    """Whether Starlette would read this Content-Type as a urlencoded form: the media type
    alone, or followed by `;` and parameters (anything stranger is left to Starlette)."""
    if not content_type:
        return False
    lowered = content_type.lower()
    return lowered.strip(" \t") == URLENCODED or lowered.startswith(URLENCODED + ";")


def split_urlencoded(text: str) -> list[tuple[str, str]]:
    """`parse_qsl(text, keep_blank_values=True)`: the same fields, at about half the cost (a
    name or value without `%` or `+`, as nearly all are, is taken as it is)."""
    fields = []
    for piece in text.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            fields.append((_unquote_plus(name), _unquote_plus(value)))
    return fields


def _unquote_plus(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    return unquote(text) if "%" in text else text


def every_value(fields: Sequence[tuple[str, str]]) -> dict[str, str | list[str]]:
    """Each name's value, or all its values when it is repeated (what Twilio signs)."""
    params: dict[str, str | list[str]] = {}
    for name, value in fields:
        held = params.get(name)
        if held is None:
            params[name] = value
        else:
            params[name] = [*held, value] if isinstance(held, list) else [held, value]
    return params


def query_value(request: Request, name: str) -> str | None:
    """`request.query_params.get(name)` (the last value given), without building the multi-dict."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    return dict(split_urlencoded(query)).get(name) if query else None
