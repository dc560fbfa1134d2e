"""Twilio: the send adapter over the official SDK, its error-code and status tables."""

from smsrelay.providers.twilio.adapter import TwilioProvider
from smsrelay.providers.twilio.error_codes import TWILIO_ERROR_CODES, classify
from smsrelay.providers.twilio.statuses import TWILIO_STATUSES, our_status

__all__ = ["TWILIO_ERROR_CODES", "TWILIO_STATUSES", "TwilioProvider", "classify", "our_status"]
