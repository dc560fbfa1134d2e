"""Classifying an inbound SMS body as an opt-out, opt-in or help keyword (or none), as data."""

from __future__ import annotations

import enum
import unicodedata
from typing import Final


class Keyword(enum.StrEnum):
    """What an inbound message asks for."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    NONE = "none"


# Whole-body keywords, compared after `normalize_body`; sources in vectors/twilio_webhooks.md §3.
KEYWORDS: Final[dict[str, Keyword]] = {
    # Twilio Advanced Opt-Out tutorial: the default English opt-out replies on long codes.
    "STOP": Keyword.OPT_OUT,
    "UNSUBSCRIBE": Keyword.OPT_OUT,
    "END": Keyword.OPT_OUT,
    "QUIT": Keyword.OPT_OUT,
    "STOPALL": Keyword.OPT_OUT,
    "CANCEL": Keyword.OPT_OUT,
    # Twilio blog "Update to FCC's SMS Opt-Out Keywords": added 14 May 2025 (FCC rule, 11 Apr 2025).
    "REVOKE": Keyword.OPT_OUT,
    "OPTOUT": Keyword.OPT_OUT,
    # Twilio error 23004 docs: START, YES or UNSTOP removes the number from the STOP list.
    "START": Keyword.OPT_IN,
    "YES": Keyword.OPT_IN,
    "UNSTOP": Keyword.OPT_IN,
    # Twilio error 23004 docs: HELP or INFO gets an informational reply.
    "HELP": Keyword.HELP,
    "INFO": Keyword.HELP,
}

# Twilio's `OptOutType` webhook parameter (support article 31560110671259): STOP, START or HELP,
# sent when Advanced Opt-Out recognised the body (including keywords configured at Twilio).
OPT_OUT_TYPES: Final[dict[str, Keyword]] = {
    "STOP": Keyword.OPT_OUT,
    "START": Keyword.OPT_IN,
    "HELP": Keyword.HELP,
}


def normalize_body(body: str) -> str:
    """The body as compared: NFKC (full-width letters fold), trimmed, trailing punctuation dropped.

    Product decision (the sources leave it open): " stop ", "Stop!" and "STOP." are opt-outs;
    words inside a sentence ("stop please") are not, as Twilio's own matching does.
    """
    text = unicodedata.normalize("NFKC", body).strip()
    while text and unicodedata.category(text[-1]).startswith("P"):
        text = text[:-1].rstrip()
    return text.upper()


def classify(body: str) -> Keyword:
    """The keyword class of a whole inbound body."""
    return KEYWORDS.get(normalize_body(body), Keyword.NONE)


def classify_inbound(body: str, opt_out_type: str | None) -> Keyword:
    """Twilio's own `OptOutType` when it sent one, else our reading of the body."""
    if opt_out_type:
        known = OPT_OUT_TYPES.get(opt_out_type.strip().upper())
        if known is not None:
            return known
    return classify(body)
