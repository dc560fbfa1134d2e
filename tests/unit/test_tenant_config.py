"""Provider config specs and the routes a tenant's verified accounts add (pure, no I/O)."""

from __future__ import annotations

import pytest

from smsrelay.providers.registry import TENANT_CONFIGS
from smsrelay.services.provider_configs import routed_policy
from smsrelay.services.submit import SubmitPolicy

TWILIO = TENANT_CONFIGS["twilio"]
GOOD = {"accountSid": "AC" + "a" * 32, "authToken": "t" * 32, "fromNumber": "+15005550006"}


def test_a_good_twilio_config_has_no_problem() -> None:
    assert TWILIO.field_problems(GOOD) == []
    assert TWILIO.secret_fields == ("authToken",)
    assert (TWILIO.account_field, TWILIO.signing_field) == ("accountSid", "authToken")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"accountSid": "AC" + "g" * 32}, "accountSid"),  # not hex
        ({"accountSid": "AC" + "a" * 31}, "accountSid"),
        ({"messagingServiceSid": "MG" + "a" * 33}, "messagingServiceSid"),
        ({"fromNumber": "+0123456789"}, "fromNumber"),
        ({"fromNumber": "+1 415 555 0100"}, "fromNumber"),
        ({"authToken": "tab\there"}, "authToken"),
    ],
)
def test_each_malformed_twilio_field_is_named(change: dict[str, str], field: str) -> None:
    assert [name for name, _ in TWILIO.field_problems(GOOD | change)] == [field]


def test_msg91_reuses_the_packages_own_checks() -> None:
    msg91 = TENANT_CONFIGS["msg91"]
    values = {"authKey": "k" * 20, "senderId": "ABCDE", "dltEntityId": "12x", "templateId": "t"}
    problems = dict(msg91.field_problems(values))
    assert problems == {
        "senderId": "must be exactly 6 letters or digits",
        "dltEntityId": "must be the numeric PE ID",
    }
    assert msg91.issues_webhook_token and not msg91.can_look_up_messages


PLATFORM = SubmitPolicy(provider="simulator")


@pytest.mark.parametrize(
    ("verified", "provider", "routes"),
    [
        (set(), "simulator", {}),
        ({"msg91"}, "simulator", {"IN": "msg91"}),
        ({"twilio"}, "twilio", {}),
        ({"twilio", "msg91"}, "twilio", {"IN": "msg91"}),
    ],
)
def test_verified_accounts_add_routes_and_keep_the_platforms(
    verified: set[str], provider: str, routes: dict[str, str]
) -> None:
    policy = routed_policy(PLATFORM, verified, TENANT_CONFIGS)
    assert (policy.provider, dict(policy.routes)) == (provider, routes)
    with_msg91 = SubmitPolicy(provider="twilio", routes={"IN": "msg91"})
    assert routed_policy(with_msg91, verified, TENANT_CONFIGS).routes == {"IN": "msg91"}
