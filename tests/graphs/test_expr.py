"""The when: language: parsing, types, evaluation — and that it never evaluates Python."""

from __future__ import annotations

import pytest

from argus.errors import BadInput
from argus.graphs.expr import ExprError, attribute, parse_expression, tokenize

STEPS = {"labels": {"label", "score", "index"}, "faces": {"box", "score", "landmarks"}}


def resolve(step: str | None, attr: str, column: int) -> tuple[str, str]:
    """A resolver like the graph's: STEP.ATTR, or a bare field that one step has."""
    if step is None:
        owners = [s for s, fields in STEPS.items() if attr.rstrip("s") in fields]
        if len(owners) != 1:
            raise ExprError(f"cannot tell which step has {attr}", column)
        return owners[0], attr
    if step not in STEPS:
        raise ExprError(f"no step named {step!r}", column)
    return step, attr


RESULTS = {
    "labels": {
        "labels": [
            {"label": "tiger cat", "index": 282, "score": 0.61},
            {"label": "tabby", "index": 281, "score": 0.2},
        ]
    },
    "faces": {"faces": []},
}


def check(source: str) -> bool:
    return parse_expression(source, resolve).evaluate(RESULTS)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("faces.count > 0", False),
        ("faces.count == 0", True),
        ("labels.count >= 2", True),
        ("labels.max_score >= 0.5", True),
        ("labels.max_score >= 0.7", False),
        ("labels.min_score < 0.3", True),
        ("labels.top_label == 'tiger cat'", True),
        ('labels.top_label != "tiger cat"', False),
        ('any label in ["cat", "tiger cat"]', True),
        ('any labels.label in ["dog", "cat"]', False),
        ("all labels.label in ['tiger cat', 'tabby']", True),
        ("all labels.label in ['tiger cat']", False),
        ("'tabby' in labels.label", True),
        ("'lynx' not in labels.label", True),
        ("282 in labels.index", True),
        ("not faces.count > 0", True),
        ("faces.count > 0 or labels.max_score > 0.5", True),
        ("faces.count > 0 and labels.max_score > 0.5", False),
        ("not (faces.count > 0 and labels.max_score > 0.5)", True),
        ("(faces.count > 0 or labels.count > 1) and labels.top_score > 0.6", True),
        ("faces.max_score == 0", True),  # no items: 0, not an error
        ("faces.top_label == ''", True),
        ("labels.count > -1.5e0", True),
        ("true", True),
        ("false or labels.count == 2", True),
    ],
)
def test_evaluates(source: str, expected: bool) -> None:
    assert check(source) is expected


def test_precedence_and_binds_tighter_than_or() -> None:
    # false and false or true == (false and false) or true == true
    assert check("faces.count > 0 and faces.count > 1 or labels.count == 2") is True
    # would be false if 'or' bound tighter: false and (false or true)
    assert check("faces.count > 0 and (faces.count > 1 or labels.count == 2)") is False


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("", "empty", 1),
        ("faces.count >", "expected a value but found the end", 14),
        ("faces.count > 0 faces", "unexpected 'faces' after a complete expression", 17),
        ("faces.count = 0", "unexpected character '='", 13),
        ("faces.count > 0 && labels.count", "unexpected character '&'", 17),
        ("__import__('os').system('x')", "__import__", 1),
        ("labels.count > 0 (1)", "unexpected '('", 18),
        ("faces.count", "must be true or false", 1),
        ("faces.count > 'many'", "cannot compare a number with a string", 13),
        ("labels.label == 'cat'", "cannot compare a list with a string", 14),
        ("labels.label in ['cat']", "write 'any X in [...]'", 14),
        ("labels.count in 3", "needs a list on its right", 14),
        ("any labels.count in [1]", "needs a list here, not a number", 5),
        ("any labels.label ['cat']", "expected 'in'", 18),
        ("[1, 'a'] == [1]", "only numbers or only strings", 1),
        ("[faces.count] == [1]", "a list holds numbers or strings", 2),
        ("(faces.count > 0", "expected ')'", 17),
        ("not labels.count", "needs a true/false here", 5),
        ("labels.count > 0 and 'x'", "needs a true/false here", 22),
        ("cats.count > 0", "no step named 'cats'", 1),
        ("labels. > 0", "expected an attribute after 'labels.'", 9),
        ("'unclosed > 0", "unexpected character", 1),
        ("(" * 40 + "faces.count > 0" + ")" * 40, "nests deeper than 32", 33),
        ("not " * 40 + "faces.count > 0", "nests deeper than 32", 129),
        ("faces.count > 0 or " * 200 + "true", "longer than 2000", 2000),
    ],
)
def test_errors_name_the_column(source: str, message: str, column: int) -> None:
    with pytest.raises(ExprError) as info:
        parse_expression(source, resolve)
    assert message in info.value.message
    assert info.value.column == column
    assert isinstance(info.value, BadInput)


def test_strings_with_escapes_and_both_quotes() -> None:
    tokens = tokenize(r"""'it\'s' "say \"hi\"" 'a"b'""")
    assert [t.value for t in tokens[:-1]] == ["it's", 'say "hi"', 'a"b']


def test_attributes_of_per_crop_results_flatten_items() -> None:
    result = {
        "count": 2,
        "results": [
            {"labels": [{"label": "red", "index": 0, "score": 0.9}]},
            {"labels": [{"label": "blue", "index": 2, "score": 0.4}]},
        ],
    }
    assert attribute(result, "count") == 2
    assert attribute(result, "label") == ["red", "blue"]
    assert attribute(result, "max_score") == 0.9
    assert attribute({"count": 3, "size": 112}, "count") == 3


def test_steps_read_by_an_expression() -> None:
    expr = parse_expression("faces.count > 0 or any label in ['cat']", resolve)
    assert expr.steps() == {"faces", "labels"}


# -- text steps: their whole text, every line's text, contains/startswith ------------------

TEXT_STEPS = {"sign": {"box", "text", "score"}, "labels": {"label", "score", "index"}}
TEXT_RESULTS = {
    "sign": {
        "lines": [
            {"text": "EMERGENCY", "score": 0.98, "box": [[0, 0], [9, 0], [9, 2], [0, 2]]},
            {"text": "Exit only", "score": 0.91, "box": [[0, 3], [9, 3], [9, 5], [0, 5]]},
        ],
        "text": "EMERGENCY\nExit only",
    },
    "labels": RESULTS["labels"],
}


def resolve_text(step: str | None, attr: str, column: int) -> tuple[str, str]:
    if step is None:
        owners = [s for s, fields in TEXT_STEPS.items() if attr.rstrip("s") in fields]
        if len(owners) != 1:
            raise ExprError(f"cannot tell which step has {attr}", column)
        return owners[0], attr
    if attr in ("text", "texts") and "text" not in TEXT_STEPS[step]:
        raise ExprError(f"step {step!r} has no text", column)
    return step, attr


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('sign.contains("EXIT")', True),
        ("sign.contains('exit only')", True),  # ignoring case
        ('sign.contains("entrance")', False),
        ('contains("emergency")', True),  # bare: the one step with text
        ('sign.startswith("emergency")', True),
        ('sign.startswith("exit")', False),
        ("sign.count > 0 and sign.contains('EXIT')", True),
        ("not sign.contains('fire')", True),
        ('"Exit only" in sign.texts', True),
        ('any sign.texts in ["EMERGENCY", "stop"]', True),
        ("sign.text == 'EMERGENCY'", False),  # the whole text: both lines
        ("sign.text != ''", True),
        ("sign.min_score > 0.9", True),
        ('sign.contains("EXIT") or labels.top_label == "tabby"', True),
    ],
)
def test_text_steps(source: str, expected: bool) -> None:
    assert parse_expression(source, resolve_text).evaluate(TEXT_RESULTS) is expected


def test_a_text_step_that_read_nothing_contains_nothing() -> None:
    expr = parse_expression('sign.contains("EXIT") or sign.text == ""', resolve_text)
    assert expr.evaluate({"sign": {"lines": [], "text": ""}}) is True
    assert parse_expression('sign.contains("")', resolve_text).evaluate(
        {"sign": {"lines": []}}
    ) is True  # the empty string is in every text
    assert expr.steps() == {"sign"}


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("sign.contains > 0", "is a test: write contains", 6),
        ("sign.contains(3)", "takes one string in quotes, not '3'", 15),
        ("sign.contains(sign.text)", "takes one string in quotes", 15),
        ("sign.contains('a', 'b')", "expected ')' after contains's string", 18),
        ("sign.contains('a'", "expected ')' after contains's string", 18),
        ("labels.contains('cat')", "step 'labels' has no text", 1),
        ("sign.contains('EXIT') == 1", "cannot compare a true/false with a number", 23),
        ("sign.text > 3", "cannot compare a string with a number", 11),
    ],
)
def test_text_errors_name_the_column(source: str, message: str, column: int) -> None:
    with pytest.raises(ExprError) as info:
        parse_expression(source, resolve_text)
    assert message in info.value.message
    assert info.value.column == column
