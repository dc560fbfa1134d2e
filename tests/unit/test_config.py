"""Bad settings stop start-up with a message naming the variable."""

from __future__ import annotations

import pytest

from smsrelay.config import SettingsError, load_settings


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"database_url": "mysql://x"}, "SMSRELAY_DATABASE_URL"),
        ({"env": "staging"}, "SMSRELAY_ENV"),
        ({"public_url": "example.com"}, "SMSRELAY_PUBLIC_URL"),
        ({"provider": "nexmo"}, "SMSRELAY_PROVIDER"),
        ({"default_region": "XX"}, "SMSRELAY_DEFAULT_REGION"),
        ({"secret_keys": "not-a-key"}, "SMSRELAY_SECRET_KEYS"),
        ({"test_sms_limit": "lots"}, "SMSRELAY_TEST_SMS_LIMIT"),
        ({"resend_cap": 0}, "SMSRELAY_RESEND_CAP"),
        ({"twilio_api_base_url": "ftp://x"}, "TWILIO_API_BASE_URL"),
    ],
)
def test_bad_setting_names_its_variable(overrides: dict[str, object], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings(**overrides)


def test_provider_defaults_follow_the_environment() -> None:
    assert load_settings(env="development").effective_provider == "simulator"
    assert (
        load_settings(
            env="development", twilio_account_sid="AC1", twilio_auth_token="t"
        ).effective_provider
        == "twilio"
    )
    assert load_settings(env="production").effective_provider == "twilio"


def test_region_is_normalised_and_empty_secret_keys_mean_none() -> None:
    settings = load_settings(default_region="gb", secret_keys="")
    assert settings.default_region == "GB" and settings.secret_keys is None
