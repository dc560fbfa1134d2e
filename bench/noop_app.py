"""The baseline for webhook ingest: a no-op form endpoint on smsrelay's own HTTP stack.

The same FastAPI/Starlette version, the same ASGI guard (`RefuseNul`), the same error
handlers and the same uvicorn options as `smsrelay serve`; `POST /noop-form` reads the form
and answers an empty 200, as `POST /api/webhooks/twilio/status` does once it has done its work.

    .venv/bin/python bench/noop_app.py --port 8090
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, Request, Response

from smsrelay.api.errors import install_error_handlers
from smsrelay.api.guards import RefuseNul


def build_app() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None)
    install_error_handlers(app)
    app.add_middleware(RefuseNul)

    async def noop_form(request: Request) -> Response:
        form = await request.form()
        _ = {key: str(value) for key, value in form.multi_items()}
        return Response(status_code=200)

    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_api_route("/noop-form", noop_form, methods=["POST"])
    app.add_api_route("/healthz", health, methods=["GET"])
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    uvicorn.run(
        build_app(),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
