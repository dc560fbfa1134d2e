"""Which provider carries each country's messages: a table, narrowed to the providers configured.

A country not in the table (or whose provider is not configured) goes through the deployment's
main provider (`SMSRELAY_PROVIDER`: the simulator or Twilio).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Final

# Region (ISO 3166-1 alpha-2) -> provider name.
ROUTES: Final[Mapping[str, str]] = {
    # India: commercial SMS must carry a TRAI DLT-registered 6-character header and template,
    # which MSG91 handles; product spec section 2 makes MSG91 "the platform default for Indian
    # numbers" and issue 6 item 4 routes +91 to it when configured. Agrees with `route` in
    # data/senders.json.
    "IN": "msg91",
}


def routes_for(configured: Collection[str], table: Mapping[str, str] = ROUTES) -> dict[str, str]:
    """The routes whose provider is configured; every other region uses the main provider."""
    return {region: name for region, name in table.items() if name in configured}
