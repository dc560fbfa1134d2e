"""MSG91: the flow API v5 adapter, its error-code table and its delivery-report statuses."""

from smsrelay.providers.msg91.adapter import ENV_VARS, Msg91Config, Msg91Provider
from smsrelay.providers.msg91.errors import HTTP_STATUSES, MSG91_ERROR_CODES, classify
from smsrelay.providers.msg91.statuses import (
    MSG91_DLR_STATUSES,
    DeliveryReportError,
    ParsedReport,
    our_status,
    parse_delivery_report,
)

__all__ = [
    "ENV_VARS",
    "HTTP_STATUSES",
    "MSG91_DLR_STATUSES",
    "MSG91_ERROR_CODES",
    "DeliveryReportError",
    "Msg91Config",
    "Msg91Provider",
    "ParsedReport",
    "classify",
    "our_status",
    "parse_delivery_report",
]
