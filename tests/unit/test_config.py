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
        ({"smtp_url": "mail.example.com:25"}, "SMTP_URL"),
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


def test_smtp_password_never_shows_in_the_settings_repr() -> None:
    settings = load_settings(smtp_url="smtp://alerts:hunter2-secret@mail.example.com:587")
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in str(settings.model_dump())
    assert settings.smtp_url is not None
    assert settings.smtp_url.get_secret_value().endswith("@mail.example.com:587")


def test_blank_smtp_url_means_no_email() -> None:
    assert load_settings(smtp_url="  ").smtp_url is None
