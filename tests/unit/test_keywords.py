"""Inbound keyword classification, on the shared Twilio vectors and our product decisions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from smsrelay.domain.keywords import KEYWORDS, Keyword, classify, classify_inbound
from tests.conftest import VECTORS

WEBHOOKS: dict[str, Any] = json.loads((VECTORS / "twilio_webhooks.json").read_text("utf-8"))
CLASSES = {"opt_out": Keyword.OPT_OUT, "opt_in": Keyword.OPT_IN, "help": Keyword.HELP}
CLASSES["none"] = Keyword.NONE

# The vectors leave these open ("unspecified"); what smsrelay decided, and why.
DECIDED = {
    " stop ": Keyword.OPT_OUT,  # issue 5: surrounding whitespace is ignored
    "STOP.": Keyword.OPT_OUT,  # issue 5: trailing punctuation is ignored
    "ARRET": Keyword.NONE,  # not a Twilio default; add it at Twilio (OptOutType) to honour it
}


def _vector_cases() -> list[tuple[str, Keyword]]:
    cases = []
    for case in WEBHOOKS["classifier_vectors"]["cases"]:
        body, kind = case["body"], case["class"]
        cases.append((body, DECIDED[body] if kind == "unspecified" else CLASSES[kind]))
    return cases


@pytest.mark.parametrize(("body", "expected"), _vector_cases())
def test_classifier_vectors(body: str, expected: Keyword) -> None:
    assert classify(body) is expected


def test_every_unspecified_vector_has_a_decision() -> None:
    unspecified = {
        c["body"] for c in WEBHOOKS["classifier_vectors"]["cases"] if c["class"] == "unspecified"
    }
    assert unspecified == set(DECIDED)


def test_the_keyword_table_is_exactly_twilios_default_lists() -> None:
    lists = WEBHOOKS["keywords"]
    expected = {word: Keyword.OPT_OUT for word in lists["opt_out_current_default"]}
    expected |= {word: Keyword.OPT_IN for word in lists["opt_in"]}
    expected |= {word: Keyword.HELP for word in lists["help"]}
    assert expected == KEYWORDS
    assert set(lists["opt_out_legacy_six"]) <= set(expected)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Stop!", Keyword.OPT_OUT),
        ("  Unsubscribe!!\n", Keyword.OPT_OUT),
        ("quit?", Keyword.OPT_OUT),
        ("revoke ...", Keyword.OPT_OUT),
        ("\tOptOut", Keyword.OPT_OUT),
        ("ＳＴＯＰ", Keyword.OPT_OUT),  # full-width letters fold to ASCII (NFKC)
        ("yes!", Keyword.OPT_IN),
        ("Unstop", Keyword.OPT_IN),
        ("info?", Keyword.HELP),
        ("STOP STOP", Keyword.NONE),
        ("STOPPED", Keyword.NONE),
        ("S.T.O.P", Keyword.NONE),
        ("¿STOP", Keyword.NONE),  # only trailing punctuation is dropped
        ("", Keyword.NONE),
        ("!!!", Keyword.NONE),
        ("See you at 5", Keyword.NONE),
    ],
)
def test_whitespace_case_and_trailing_punctuation(body: str, expected: Keyword) -> None:
    assert classify(body) is expected


@pytest.mark.parametrize(
    ("body", "opt_out_type", "expected"),
    [
        ("ARRET", "STOP", Keyword.OPT_OUT),  # a keyword configured at Twilio
        ("hello", "start", Keyword.OPT_IN),
        ("aide", "HELP", Keyword.HELP),
        ("STOP", None, Keyword.OPT_OUT),
        ("STOP", "", Keyword.OPT_OUT),
        ("STOP", "SOMETHING_NEW", Keyword.OPT_OUT),  # unknown type: read the body
        ("hello", "SOMETHING_NEW", Keyword.NONE),
    ],
)
def test_twilio_opt_out_type_wins_over_the_body(
    body: str, opt_out_type: str | None, expected: Keyword
) -> None:
    assert classify_inbound(body, opt_out_type) is expected
