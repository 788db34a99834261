"""Hostile prompt files, generated: BOM, CRLF, bytes that are not UTF-8, huge lines, nested
or non-string fields, misaligned CSV rows, duplicate ids, in JSONL, CSV/TSV and Parquet.

Each case ends in the exact prompts the file holds, or `PromptError` with the message
FILE:LINE: field 'NAME': PROBLEM (and, with skip_invalid, that row set aside with the same
field and problem, the good rows kept in order). Never another exception.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distill.gen.prompts import FieldMapping, PromptError, load_prompts

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# Prompt text: any Unicode but surrogates (which UTF-8 cannot hold), not blank.
texts = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40).filter(
    lambda t: t.strip() != ""
)
BAD_BYTES = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"]  # stray, cut, surrogate, orphan
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner)
)


def kind_of(value: object) -> str:
    """What the error calls a JSON value that is not a string (an independent table)."""
    if value is True or value is False:
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {dict: "an object", list: "a list"}[type(value)]


def messages_text(batch) -> list[str]:
    return [row.messages[-1]["content"] for row in batch.rows]


@given(
    prompts=st.lists(texts, min_size=1, max_size=6),
    bom=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
    blank=st.booleans(),
)
@FUZZ
def test_jsonl_with_bom_crlf_and_blank_lines_reads_every_prompt(
    tmp_path: Path, prompts: list[str], bom: bool, newline: str, blank: bool
) -> None:
    lines = [json.dumps({"prompt": p}, ensure_ascii=False) for p in prompts]
    if blank:
        lines = [x for line in lines for x in (line, "  ")]
    path = tmp_path / "p.jsonl"
    path.write_bytes((("\ufeff" if bom else "") + newline.join(lines) + newline).encode())
    batch = load_prompts(path)
    assert messages_text(batch) == prompts
    step = 2 if blank else 1
    assert [row.source_row for row in batch.rows] == list(range(1, step * len(prompts) + 1, step))


@given(
    before=st.lists(texts, max_size=3),
    prefix=texts,
    bad=st.sampled_from(BAD_BYTES),
    suffix=texts,
)
@FUZZ
def test_a_bad_byte_in_a_value_names_its_line_field_and_character(
    tmp_path: Path, before: list[str], prefix: str, bad: bytes, suffix: str
) -> None:
    good = [json.dumps({"prompt": p}, ensure_ascii=False).encode() for p in before]
    hostile = b'{"prompt": "' + json_body(prefix) + bad + json_body(suffix) + b'"}'
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"\r\n".join([*good, hostile, *good]) + b"\r\n")
    line = len(before) + 1
    column = len(json.loads(f'"{json_body(prefix).decode()}"')) + 1
    problem = f"not valid UTF-8 text (character {column})"
    with pytest.raises(PromptError) as err:
        load_prompts(path)
    assert str(err.value) == f"{path}:{line}: field 'prompt': {problem}"
    batch = load_prompts(path, skip_invalid=True)
    assert messages_text(batch) == before + before
    (invalid,) = batch.invalid
    assert (invalid.source_row, invalid.field, invalid.reason) == (line, "prompt", problem)
    json.dumps(invalid.raw, ensure_ascii=False).encode("utf-8")  # the rejects file can hold it


def json_body(text: str) -> bytes:
    """`text` as the inside of a JSON string literal, UTF-8."""
    return json.dumps(text, ensure_ascii=False)[1:-1].encode()


@given(value=json_values.filter(lambda v: v is not None and not isinstance(v, str)))
@FUZZ
def test_a_prompt_that_is_not_a_string_is_refused_by_kind(tmp_path: Path, value: object) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": value}) + "\n", encoding="utf-8")
    with pytest.raises(PromptError) as err:
        load_prompts(path)
    assert str(err.value) == f"{path}:1: field 'prompt': {kind_of(value)}, not a string"


@given(
    field=st.sampled_from(["domain", "reference", "id", "system"]),
    value=json_values.filter(lambda v: isinstance(v, dict | list)),
)
@FUZZ
def test_a_nested_optional_field_is_refused_not_stringified(
    tmp_path: Path, field: str, value: object
) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "hi", field: value}) + "\n", encoding="utf-8")
    mapping = FieldMapping(id="id", system="system")
    with pytest.raises(PromptError) as err:
        load_prompts(path, mapping=mapping)
    assert str(err.value) == f"{path}:1: field '{field}': {kind_of(value)}, not a string"


@given(
    turn=st.sampled_from(
        [("content", {"a": 1}, "an object"), ("content", None, "null"), ("role", 3, "a number")]
    )
)
@FUZZ
def test_a_chat_turn_with_a_non_string_part_names_the_turn(tmp_path: Path, turn) -> None:
    part, value, kind = turn
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]
    chat[1][part] = value
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"chat": chat}) + "\n", encoding="utf-8")
    with pytest.raises(PromptError) as err:
        load_prompts(path, mapping=FieldMapping(messages="chat"))
    assert str(err.value) == f"{path}:1: field 'chat': turn 1 {part}: {kind}, not a string"


@given(ids=st.lists(st.sampled_from(["a", "b", "c", "7"]), min_size=2, max_size=8))
@FUZZ
def test_duplicate_ids_are_refused_at_the_repeat(tmp_path: Path, ids: list[str]) -> None:
    path = tmp_path / "p.jsonl"
    lines = [
        json.dumps({"prompt": f"q{i}", "id": int(x) if x == "7" else x}) for i, x in enumerate(ids)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    first_line = {}
    for line, x in enumerate(ids, start=1):
        first_line.setdefault(x, line)
    repeats = [(line, x) for line, x in enumerate(ids, start=1) if first_line[x] != line]
    batch = load_prompts(path, mapping=FieldMapping(id="id"), skip_invalid=True)
    assert [row.prompt_id for row in batch.rows] == list(first_line)
    expected = [
        (line, "id", f"duplicate id {x!r}, first on line {first_line[x]}") for line, x in repeats
    ]
    assert [(i.source_row, i.field, i.reason) for i in batch.invalid] == expected
    if repeats:
        line, x = repeats[0]
        with pytest.raises(PromptError) as err:
            load_prompts(path, mapping=FieldMapping(id="id"))
        assert str(err.value) == f"{path}:{line}: field 'id': {expected[0][2]}"


@pytest.mark.parametrize(
    "line",
    [
        "[" * 100_000,
        '{"prompt": "x", "n": ' + "9" * 5000 + "}",
        "[1, 2]",
        '"text"',
        "\ufeff\ufeff{}",
    ],
)
def test_json_lines_that_are_not_objects(tmp_path: Path, line: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "ok"}) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(PromptError) as err:
        load_prompts(path)
    assert str(err.value) == f"{path}:2: field '<line>': not a JSON object"


def test_a_lone_surrogate_escape_is_named(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "ab\\ud800"}\n', encoding="utf-8")  # valid JSON, not UTF-8
    with pytest.raises(PromptError) as err:
        load_prompts(path)
    assert str(err.value) == f"{path}:1: field 'prompt': not valid UTF-8 text (character 3)"


@given(
    rows=st.lists(st.tuples(texts, texts), min_size=1, max_size=5),
    tsv=st.booleans(),
    bom=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
)
@FUZZ
def test_csv_and_tsv_with_quotes_newlines_bom_and_crlf_read_every_cell(
    tmp_path: Path, rows: list[tuple[str, str]], tsv: bool, bom: bool, newline: str
) -> None:
    out = io.StringIO()
    # Minimal quoting quotes a cell holding a character of the line terminator only: with
    # "\n" a bare "\r" would go unquoted and end the row early, so quote every cell then.
    quoting = csv.QUOTE_MINIMAL if newline == "\r\n" else csv.QUOTE_ALL
    writer = csv.writer(
        out, delimiter="\t" if tsv else ",", lineterminator=newline, quoting=quoting
    )
    writer.writerows([("q", "topic"), *rows])
    path = tmp_path / ("p.tsv" if tsv else "p.csv")
    path.write_bytes((("\ufeff" if bom else "") + out.getvalue()).encode())
    mapping = FieldMapping(prompt="q", domain="topic")
    batch = load_prompts(path, mapping=mapping)
    assert messages_text(batch) == [q for q, _ in rows]
    assert [row.domain for row in batch.rows] == [d for _, d in rows]


@pytest.mark.parametrize(
    ("row", "cells"), [("what?,geo,extra", 3), ("what? no topic", 1), ("a,b,c,d", 4)]
)
def test_a_csv_row_that_does_not_fit_the_header_is_refused(tmp_path: Path, row, cells) -> None:
    path = tmp_path / "p.csv"
    path.write_text(f"q,topic\r\nfine,geo\r\n{row}\r\nalso fine,x\r\n", encoding="utf-8")
    mapping = FieldMapping(prompt="q", domain="topic")
    with pytest.raises(PromptError) as err:
        load_prompts(path, mapping=mapping)
    assert str(err.value) == f"{path}:3: field '<line>': {cells} cells, the header has 2"
    assert messages_text(load_prompts(path, mapping=mapping, skip_invalid=True)) == [
        "fine",
        "also fine",
    ]


def test_a_bad_byte_in_a_csv_cell_names_the_column(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(b"q,topic\nfine,geo\nbad \xff here,geo\n")
    with pytest.raises(PromptError) as err:
        load_prompts(path, mapping=FieldMapping(prompt="q"))
    assert str(err.value) == f"{path}:3: field 'q': not valid UTF-8 text (character 5)"


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_huge_line_is_read_whole(tmp_path: Path, suffix: str) -> None:
    huge = "word, " * 400_000  # 2.4 MB: past the csv module's 128 KiB default cell limit
    path = tmp_path / f"p{suffix}"
    if suffix == ".jsonl":
        path.write_text(json.dumps({"prompt": huge}) + "\n", encoding="utf-8")
    else:
        path.write_text(f'prompt\n"{huge}"\n', encoding="utf-8")
    assert messages_text(load_prompts(path)) == [huge]


@pytest.mark.parametrize(
    ("column", "kind"),
    [
        (pa.array([{"text": "hi"}]), "an object"),
        (pa.array([["hi", "there"]]), "a list"),
        (pa.array([3]), "a number"),
        (pa.array([b"hi"]), "bytes"),
    ],
)
def test_a_parquet_prompt_column_of_another_type_is_refused(tmp_path: Path, column, kind) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"prompt": column}), path)
    with pytest.raises(PromptError) as err:
        load_prompts(path)
    assert str(err.value) == f"{path}:1: field 'prompt': {kind}, not a string"


@given(cut=st.integers(0, 200), junk=st.binary(max_size=64))
@FUZZ
def test_a_damaged_parquet_file_is_named(tmp_path: Path, cut: int, junk: bytes) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"prompt": [f"question {i}" for i in range(50)]}), path)
    data = path.read_bytes()
    path.write_bytes(data[: min(cut, len(data) - 1)] + junk)
    with pytest.raises(PromptError) as err:
        load_prompts(path)
    assert str(err.value).startswith(f"{path}:0: field '<file>': not a readable Parquet file (")


def test_the_cli_prints_the_located_error_and_no_traceback(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from distill.cli import app

    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"prompt": "fine"}\r\n{"prompt": {"text": "nested"}}\r\n')
    result = CliRunner().invoke(app, ["gen", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and result.exception is not None  # typer.Exit, not a crash
    assert isinstance(result.exception, SystemExit)
    message = " ".join(result.output.split())  # the console may wrap a long path
    assert f"error: {path}:2: field 'prompt': an object, not a string" in message
    assert "Traceback" not in result.output


def test_a_nan_in_an_optional_parquet_column_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    table = pa.table({"prompt": ["a", "b"], "reference": [float("nan"), 4.0], "domain": [1, 2]})
    pq.write_table(table, path)
    rows = load_prompts(path).rows
    assert [(r.reference, r.domain) for r in rows] == [(None, "1"), ("4.0", "2")]
