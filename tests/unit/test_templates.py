"""The {{name}} renderer: substitution only, with the missing names reported."""

from __future__ import annotations

import pytest

from smsrelay.domain.templates import MissingVariables, Template


def test_names_are_found_once_in_order_of_use() -> None:
    template = Template.parse("Hi {{ firstName }}, {{code}} {{firstName}} {{ not a name }} {x}")
    assert template.names == ("firstName", "code") and not template.is_plain
    assert template.render({"firstName": "Ada", "code": "7"}) == (
        "Hi Ada, 7 Ada {{ not a name }} {x}"
    )


def test_values_are_never_evaluated() -> None:
    template = Template.parse("{{a}}")
    assert template.render({"a": "{{b}} {% if %} ${x}"}) == "{{b}} {% if %} ${x}"


def test_a_missing_value_names_it() -> None:
    with pytest.raises(MissingVariables) as missing:
        Template.parse("{{a}} {{b}} {{c}}").render({"b": "1"})
    assert missing.value.names == ["a", "c"]


def test_plain_text_is_returned_as_is() -> None:
    assert Template.parse("50% {off}").render({}) == "50% {off}"


@pytest.mark.parametrize(
    ("text", "malformed"),
    [
        ("Hi {{First Name}} and {{ok}}", ["{{First Name}}"]),
        ("{{1st}} {{}} {{1st}}", ["{{1st}}", "{{}}"]),
        ("{{ firstName }}: 50% off {today} {{a_b9}}", []),
        ("{{{x}}}", []),
    ],
)
def test_what_is_written_as_a_placeholder_but_is_not_one(text: str, malformed: list[str]) -> None:
    assert Template.parse(text).malformed == malformed
