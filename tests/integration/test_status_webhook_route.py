"""The status webhook is served by a plain Starlette route and still documented and answered as
a FastAPI route would be."""

from __future__ import annotations

from starlette.routing import Route

from smsrelay.api.routes.webhooks import router, twilio_status
from tests.integration.conftest import Api

PATH = "/api/webhooks/twilio/status"


def test_the_first_route_for_the_path_is_a_plain_starlette_route() -> None:
    first = next(r for r in router.routes if getattr(r, "path", None) == PATH)
    assert type(first) is Route and first.endpoint is twilio_status
    assert first.methods == {"POST"}


async def test_it_is_documented_as_before(api: Api) -> None:
    operation = (await api.client.get("/openapi.json")).json()["paths"][PATH]["post"]
    assert operation["operationId"] == "twilio_status_api_webhooks_twilio_status_post"
    assert operation["summary"] == "Twilio Status" and operation["tags"] == ["webhooks"]
    assert "X-Twilio-Signature" in operation["description"]


async def test_another_method_is_a_405_in_our_error_shape(api: Api) -> None:
    response = await api.client.get(PATH)
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"
