"""The simulator's structured answers: the instance built for a schema is one the schema accepts."""

from __future__ import annotations

from typing import Any

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from kimi_jupyter.testing.schemas import example

_FORMATS = st.sampled_from([None, "date", "date-time", "email", "uri", "uuid"])


@st.composite
def strings(draw: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    fmt = draw(_FORMATS)
    if fmt:
        schema["format"] = fmt
        return schema
    low = draw(st.integers(0, 20))
    schema["minLength"] = low
    if draw(st.booleans()):
        schema["maxLength"] = low + draw(st.integers(0, 10))
    return schema


@st.composite
def numbers(draw: Any) -> dict[str, Any]:
    integer = draw(st.booleans())
    schema: dict[str, Any] = {"type": "integer" if integer else "number"}
    low = draw(st.integers(-1000, 1000))
    if draw(st.booleans()):
        step = draw(st.sampled_from([1, 2, 5, 10] if integer else [0.5, 0.25, 2, 3]))
        schema["multipleOf"] = step
        schema.update(minimum=low, maximum=low + step * draw(st.integers(1, 5)))
    elif draw(st.booleans()):
        schema.update(exclusiveMinimum=low, exclusiveMaximum=low + draw(st.integers(2, 50)))
    else:
        schema["minimum" if draw(st.booleans()) else "maximum"] = low
    return schema


leaves = st.one_of(
    strings(), numbers(), st.just({"type": "boolean"}), st.just({"type": "null"}),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), min_size=1, max_size=3).map(lambda v: {"enum": v}),
    st.integers().map(lambda v: {"const": v}),
    st.just({"type": "array", "items": {"type": "string"}, "minItems": 3, "uniqueItems": True}),
)


def _object(children: Any) -> Any:
    @st.composite
    def build(draw: Any) -> dict[str, Any]:
        properties = draw(st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), children, max_size=4))
        required = [name for name in properties if draw(st.booleans())]
        schema = {"type": "object", "properties": properties, "required": required}
        if draw(st.booleans()):
            schema["additionalProperties"] = False
        return schema

    return build()


schemas = st.recursive(
    leaves,
    lambda children: st.one_of(
        _object(children),
        st.builds(lambda items, n: {"type": "array", "items": items, "minItems": n}, children, st.integers(0, 3)),
        st.lists(children, min_size=1, max_size=3).map(lambda branches: {"anyOf": branches}),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(schemas)
def test_the_example_validates(schema: dict[str, Any]) -> None:
    jsonschema.validate(example(schema), schema, format_checker=jsonschema.FormatChecker())


def test_references_and_all_of_are_followed() -> None:
    schema = {
        "$defs": {"node": {"type": "object", "properties": {"value": {"type": "integer", "minimum": 4},
                                                            "next": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/node"}]}},
                           "required": ["value", "next"]}},
        "allOf": [{"$ref": "#/$defs/node"}, {"type": "object", "required": ["label"],
                                              "properties": {"label": {"type": "string", "minLength": 9}}}],
    }
    value = example(schema)
    jsonschema.validate(value, schema)
    assert value == {"value": 4, "next": None, "label": "examplexx"}


def test_a_reference_cycle_ends() -> None:
    schema = {"type": "object", "properties": {"child": {"$ref": "#"}}, "required": ["child"]}
    assert isinstance(example(schema), dict)
