"""The FastAPI application: routes, error handlers, docs at /api-docs, lifespan of the container."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from smsrelay import __version__
from smsrelay.api.direct import document_bodies
from smsrelay.api.errors import install_error_handlers
from smsrelay.api.guards import RefuseNul
from smsrelay.api.routes import (
    balance,
    bulk,
    consent,
    keys,
    lists,
    msg91,
    notifications,
    preview,
    prices,
    providers,
    senders,
    sms,
    webhooks,
)
from smsrelay.bootstrap import Container


def create_app(container: Container, *, dispatch: bool = True, manage: bool = True) -> FastAPI:
    """The app for `container`; with `manage`, the app starts and stops it."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage:
            await container.start(dispatch=dispatch)
        try:
            yield
        finally:
            if manage:
                await container.stop()

    app = FastAPI(
        title="smsrelay",
        version=__version__,
        description="Self-hosted SMS: durable outbox, delivery tracking, consent and cost.",
        docs_url="/api-docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.container = container
    install_error_handlers(app)
    app.add_middleware(RefuseNul)
    # Routes are matched in this order: the providers' webhooks, the busiest by far (several
    # per message sent), come first.
    for module in (
        webhooks,
        msg91,
        sms,
        preview,
        prices,
        consent,
        keys,
        notifications,
        balance,
        bulk,
        lists,
    ):
        app.include_router(module.router)
    app.include_router(senders.router)
    app.include_router(providers.router)
    app.add_api_route("/healthz", _health, methods=["GET"], include_in_schema=False)
    app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)
    document_bodies(app)
    return app


async def _health() -> dict[str, str]:
    return {"status": "ok"}


async def _metrics() -> PlainTextResponse:
    return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)
