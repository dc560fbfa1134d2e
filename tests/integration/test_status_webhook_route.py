"""The status webhook is called as a plain `endpoint(request)` (no parameters solved, no answer
serialised) and still documented and answered as a FastAPI route would be."""

from __future__ import annotations

from smsrelay.api.direct import DirectRoute
from smsrelay.api.routes.webhooks import router, twilio_status
from tests.integration.conftest import Api

PATH = "/api/webhooks/twilio/status"


def test_the_only_route_for_the_path_calls_the_endpoint_directly() -> None:
    (route,) = [r for r in router.routes if getattr(r, "path", None) == PATH]
    assert isinstance(route, DirectRoute) and route.methods == {"POST"}
    assert route.get_route_handler() is twilio_status


async def test_it_is_documented_as_before(api: Api) -> None:
    operation = (await api.client.get("/openapi.json")).json()["paths"][PATH]["post"]
    assert operation["operationId"] == "twilio_status_api_webhooks_twilio_status_post"
    assert operation["summary"] == "Twilio Status" and operation["tags"] == ["webhooks"]
    assert "X-Twilio-Signature" in operation["description"]


async def test_another_method_is_a_405_in_our_error_shape(api: Api) -> None:
    response = await api.client.get(PATH)
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"
