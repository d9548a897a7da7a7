"""``{name}`` interpolation into content parts: syntax edge cases and every value kind."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from kimi_jupyter.context import ContextError, build_content, referenced_names, value_parts


def png_bytes(size: tuple[int, int] = (16, 16), color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def only_text(parts: list[dict]) -> str:
    assert len(parts) == 1 and parts[0]["type"] == "text", parts
    return parts[0]["text"]


def kinds(parts: list[dict]) -> list[str]:
    return [p["type"] for p in parts]


NS = {"x": 5, "name": "Ada", "class": "keyword-named", "π": 3.14, "none": None, "items": [1, 2, 3]}


# -- syntax -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("x is {x}", "x is 5"),
        ("{name}{x}", "Ada5"),
        ("{{x}}", "{x}"),
        ("{{{x}}}", "{5}"),
        ("{{{{x}}}}", "{{x}}"),
        ("a {{ b }} c", "a {{ b }} c"),
        ("{", "{"),
        ("}", "}"),
        ("{}", "{}"),
        ("{ }", "{ }"),
        ("{{}}", "{{}}"),
        ("{x + 1}", "{x + 1}"),
        ("{x.real}", "{x.real}"),
        ("{x[0]}", "{x[0]}"),
        ("{x!r} {x:>4}", "{x!r} {x:>4}"),
        ('{"a": 1}', '{"a": 1}'),
        ('d = {"a": {"b": {"c": 1}}}', 'd = {"a": {"b": {"c": 1}}}'),
        ("f'{x * 2}' and f\"{x=}\"", "f'{x * 2}' and f\"{x=}\""),
        ("{i for i in range(3)}", "{i for i in range(3)}"),
        ("{x}}", "{x}}"),  # unbalanced: left as typed
        ("{{x}", "{{x}"),
        ("{x", "{x"),
        ("function f() { return {a: 1}; }", "function f() { return {a: 1}; }"),
        ("{class} {π}", "keyword-named 3.14"),
        ("{none} {items}", "None [1, 2, 3]"),
        ("naïve {name} — ünïcödé 日本語 🎉", "naïve Ada — ünïcödé 日本語 🎉"),
        ("", ""),
    ],
)
def test_syntax(template: str, expected: str):
    assert only_text(build_content(template, NS)) == expected


def test_values_are_not_interpolated_again():
    assert only_text(build_content("{s}", {"s": "{x} and {{y}}", "x": 1})) == "{x} and {{y}}"


def test_pasted_code_with_braces_survives():
    code = (
        "Why does this fail?\n"
        "```python\n"
        "config = {'layers': {'n': 3}, 'opt': {'lr': 1e-3}}\n"
        "print(f'{config[\"layers\"]} -> {len(config)}')\n"
        "s = {i ** 2 for i in range(10)}\n"
        "```\n"
        "x was {x}"
    )
    text = only_text(build_content(code, NS))
    assert text == code.replace("{x}", "5")


def test_referenced_names():
    assert referenced_names("{a} {b} {a} {{c}} {d.e} {In[1]} {Out[2]} {class} {f(x)}") == ["a", "b", "class"]
    assert referenced_names("no names {1} {x + y}") == []


def test_unknown_name_error_and_no_side_effects():
    with pytest.raises(ContextError) as err:
        build_content("{x} then {foo}", NS)
    assert str(err.value) == (
        "Name 'foo' is not defined in the notebook; define it or write {{foo}} for literal braces"
    )

    class Exploding:
        def __repr__(self) -> str:
            raise AssertionError("must not be converted before validation")

    with pytest.raises(ContextError, match="'missing'"):
        build_content("{boom} {missing}", {"boom": Exploding()})


# -- values -------------------------------------------------------------------------------


def test_frames_are_fenced_summaries():
    df = pd.DataFrame({"a": [1, 2, 3]})
    parts = build_content("Look:{df}and tell me", {"df": df})
    text = only_text(parts)
    assert text.startswith("Look:\n```text\npandas.DataFrame df: 3 rows x 1 columns")
    assert text.endswith("```\nand tell me")
    text = only_text(build_content("{p}", {"p": pl.DataFrame({"b": ["x"]})}))
    assert "polars.DataFrame p" in text
    tricky = pd.DataFrame({"code": ["```", "````"]})
    text = only_text(build_content("{t}", {"t": tricky}))
    assert text.startswith("`````text\n")  # the fence outgrows any backtick run inside


def test_frame_budget_applies():
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(100, 40)))
    short = only_text(build_content("{df}", {"df": df}, frame_budget=100))
    assert len(short) <= 100 * 4 + 20  # summary plus fence


def test_images_get_a_label_and_keep_position():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([1, 2])
    ns = {
        "fig": fig,
        "pic": Image.new("RGB", (20, 10)),
        "arr": np.zeros((32, 32, 3), np.uint8),
        "raw": png_bytes(),
    }
    parts = build_content("A {fig} B {pic}{arr} C {raw}", ns)
    assert kinds(parts) == [
        "text",
        "image_url",
        "text",
        "image_url",
        "text",
        "image_url",
        "text",
        "image_url",
    ]
    assert parts[0]["text"] == "A [image: fig]"
    assert parts[2]["text"] == " B [image: pic]"
    assert parts[4]["text"] == "[image: arr]"
    assert parts[6]["text"] == " C [image: raw]"
    assert parts[7]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png_bytes()).decode()


def test_image_max_size_is_passed_on():
    parts = build_content("{img}", {"img": Image.new("RGB", (1000, 500))}, image_max_size=(100, 100))
    raw = base64.b64decode(parts[1]["image_url"]["url"].split(",", 1)[1])
    assert Image.open(io.BytesIO(raw)).size == (100, 50)


def test_paths_to_media_files(tmp_path: Path):
    pic = tmp_path / "chart.png"
    pic.write_bytes(png_bytes())
    clip = tmp_path / "demo.mov"
    clip.write_bytes(b"\x00\x00\x00\x14ftypqt  ")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    ns = {"p": str(pic), "pp": pic, "v": str(clip), "t": str(notes), "gone": str(tmp_path / "gone.png")}
    parts = build_content("{p}|{pp}|{v}|{t}|{gone}", ns)
    assert kinds(parts) == ["text", "image_url", "text", "image_url", "text", "video_url", "text"]
    assert parts[0]["text"] == "[image: p]"
    assert parts[4]["text"] == "|[video: v]"
    assert parts[5]["video_url"]["url"].startswith("data:video/quicktime;base64,")
    assert parts[6]["text"] == f"|{notes}|{tmp_path / 'gone.png'}"  # non-media and missing: text
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ContextError, match=r"broken\.png"):
        build_content("{b}", {"b": str(broken)})


def test_numpy_non_image_arrays_are_summarised():
    arr = np.arange(100_000, dtype=np.float64).reshape(1000, 100)
    text = only_text(build_content("{arr}", {"arr": arr}))
    assert "numpy.ndarray arr: shape (1000, 100), dtype float64" in text
    assert "min 0, max 99999" in text and "..." in text
    assert len(text) < 3000
    big = np.zeros(3_000_000, dtype=np.float32)
    assert "random sample" in only_text(build_content("{b}", {"b": big}))
    objs = np.array([object(), None], dtype=object)
    assert "shape (2,)" in only_text(build_content("{o}", {"o": objs}))


def test_other_objects_use_bounded_repr():
    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("nope")

    class Chatty:
        def __repr__(self) -> str:
            return "z" * 50_000

    ns = {"u": Unprintable(), "c": Chatty(), "big": list(range(1_000_000)), "d": {"k": [1, 2]}}
    assert re.fullmatch(r"<unprintable .*Unprintable>", only_text(build_content("{u}", ns)))
    text = only_text(build_content("{c}", ns, repr_chars=1000))
    assert len(text) <= 1000 and "repr truncated, 50,000 chars" in text
    text = only_text(build_content("{big}", ns))
    assert len(text) < 1000 and "1,000,000 items" in text
    assert only_text(build_content("{d}", ns)) == "{'k': [1, 2]}"
    assert only_text(build_content("{b}", {"b": b"plain"})) == "b'plain'"


def test_in_and_out_references():
    ns = {"In": ["", "df = load()", "df.shape"], "Out": {2: (3, 4)}}
    assert only_text(build_content("code: {In[1]}; shape {Out[2]}", ns)) == "code: df = load(); shape (3, 4)"
    with pytest.raises(ContextError, match=r"In\[7\] is not available"):
        build_content("{In[7]}", ns)
    with pytest.raises(ContextError, match=r"Out\[1\] is not available"):
        build_content("{Out[1]}", ns)
    assert only_text(build_content("{{In[1]}}", ns)) == "{In[1]}"


def test_out_falls_back_to_captured_plots():
    plot = png_bytes((30, 20), "blue")
    ns = {"In": ["", "plt.plot(x)", "ax = df.plot()", "len(x)"], "Out": {2: ["<Line2D>"], 3: 10}}
    parts = build_content("see {Out[1]}", ns, history={1: [plot]})
    assert kinds(parts) == ["text", "image_url"]
    assert parts[0]["text"] == "see [image: Out[1] plot]"
    parts = build_content("{Out[1]}", ns, history=lambda n: [plot, plot] if n == 1 else [])
    assert [p.get("text") for p in parts if p["type"] == "text"] == [
        "[image: Out[1] plot 1 of 2]",
        "[image: Out[1] plot 2 of 2]",
    ]

    class Capture:
        def plots_for(self, n: int) -> list[bytes]:
            return [plot] if n == 3 else []

    parts = build_content("{Out[3]}", ns, history=Capture())
    assert kinds(parts) == ["text", "image_url"] and parts[0]["text"] == "10[image: Out[3] plot]"


def test_out_matplotlib_value_replaced_by_its_plot():
    from matplotlib.figure import Figure

    fig = Figure()
    line = fig.add_subplot().plot([1, 2])
    ns = {"Out": {4: line}}
    parts = build_content("{Out[4]}", ns, history={4: [png_bytes()]})
    assert kinds(parts) == ["text", "image_url"] and "Line2D" not in parts[0]["text"]


def test_value_parts_helper():
    assert value_parts("text", "t") == [{"type": "text", "text": "text"}]
    assert kinds(value_parts(Image.new("L", (9, 9)), "im")) == ["text", "image_url"]


def test_non_string_template():
    with pytest.raises(ContextError):
        build_content(b"{x}", NS)  # type: ignore[arg-type]


# -- properties ---------------------------------------------------------------------------

SIMPLE_NS = {
    "x": 1,
    "y": "why",
    "z": [1, {"a": None}],
    "w": None,
    "f": 2.5,
    "s": "{x} stays literal inside values",
    "In": ["", "x = 1", "y"],
    "Out": {2: "why"},
}
PIECES = st.sampled_from(
    [
        "{",
        "}",
        "{{",
        "}}",
        "{x}",
        "{y}",
        "{nope}",
        "{In[1]}",
        "{Out[2]}",
        "{Out[9]}",
        "{In[0]}",
        "x",
        " ",
        "+",
        "1",
        '"a"',
        ":",
        "[",
        "]",
        "\n",
        "f'",
        "{x + 1}",
        '{"a": {"b": 1}}',
        "{ }",
        "é",
        "🎉",
        "\\",
        "In[",
        "Out",
    ]
)
TEMPLATES = st.one_of(
    st.text(alphabet=st.sampled_from(list("{}[]xyzwfsInOut0123 _.:!'\"\n\\é")), max_size=60),
    st.lists(PIECES, max_size=25).map("".join),
    st.text(max_size=40),
)
PLACEHOLDER = re.compile(r"\{+(?:[^\W\d]\w*|(?:In|Out)\[\d+\])\}+")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEMPLATES)
def test_only_context_errors_and_only_text(template: str):
    try:
        parts = build_content(template, SIMPLE_NS)
    except ContextError:
        return
    assert parts and all(p["type"] == "text" for p in parts)
    assert len(parts) == 1  # adjacent text is merged


@settings(max_examples=400, deadline=None)
@given(TEMPLATES)
def test_templates_without_placeholders_are_byte_identical(template: str):
    assume(not PLACEHOLDER.search(template))
    assert referenced_names(template) == []
    assert only_text(build_content(template, {})) == template


@settings(max_examples=200, deadline=None)
@given(st.lists(PIECES, max_size=20).map("".join))
def test_referenced_names_are_exactly_what_is_needed(template: str):
    names = referenced_names(template)
    ns = {name: f"<{name}>" for name in names} | {"In": ["", "a", "b"], "Out": {2: 3, 9: 4}}
    try:
        build_content(template, ns)
    except ContextError as exc:
        assert "In[0]" in str(exc)  # the only reference that can still be missing
