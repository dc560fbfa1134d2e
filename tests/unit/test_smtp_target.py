"""SMTP_URL parsed for alert emails: its parts, and a password that never shows in a repr."""

from __future__ import annotations

from smsrelay.services.alert_delivery import SmtpTarget, smtp_target


def test_the_password_is_kept_but_never_shown() -> None:
    target = smtp_target("smtps://alerts%40example.com:hunter2%2Fsecret@mail.example.com")
    assert target == SmtpTarget(
        "mail.example.com", 465, True, "alerts@example.com", "hunter2/secret"
    )
    assert "hunter2" not in repr(target) and "hunter2" not in str(target)
