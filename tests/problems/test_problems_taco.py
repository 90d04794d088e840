"""TACO/APPS: stdio and call-based (fn_name) records, errors, and oracle isolation."""

from __future__ import annotations

import ast
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conself.problems import ORACLE_COLUMNS, PROBLEM_COLUMNS, ProblemSourceError, load_problems

STDIO = {
    "question": "Sum two numbers given on one line.",
    "starter_code": "",
    "difficulty": "EASY",
    "input_output": json.dumps(
        {"inputs": ["1 2\n", "5 7\n"], "outputs": ["OUT_THREE\n", "OUT_12\n"]}
    ),
    "solutions": json.dumps(["a, b = map(int, input().split())\nprint(a + b)\n"]),
}
LINES = {
    "question": "Echo the lines.",
    "starter_code": "",
    "input_output": {"inputs": [["3", "a b"]], "outputs": [["OUT_LINES_X", "OUT_LINES_Y"]]},
}
CALL = {
    "question": "Return the sum of a list and a number.",
    "starter_code": "def add(xs, k):\n    ",
    "difficulty": "MEDIUM",
    "input_output": json.dumps(
        {
            "fn_name": "add",
            "inputs": [[[1, 2], 3], [[4.5], -1], [[1, 2], 3]],
            "outputs": [[60606], [70707.5], [60606]],
        }
    ),
}
NO_INPUTS = {
    "question": "Nothing to run.",
    "starter_code": "",
    "input_output": json.dumps({"inputs": [], "outputs": []}),
}


def _load(write_jsonl, records, name="taco.jsonl", source="taco", **options):
    return load_problems(source, path=str(write_jsonl(name, records)), **options)


def test_stdio_and_call_records(write_jsonl, parquet_roundtrip):
    problems, oracles = _load(write_jsonl, [STDIO, LINES, CALL])
    assert list(problems.columns) == PROBLEM_COLUMNS
    assert list(oracles.columns) == ORACLE_COLUMNS
    assert problems["problem_id"].tolist() == ["taco/0", "taco/1", "taco/2"]
    stdio, lines, call = (problems.iloc[i] for i in range(3))
    assert stdio["kind"] == "stdio" and stdio["entry_point"] == ""
    assert stdio["test_inputs"] == ["1 2\n", "5 7\n"]
    assert stdio["difficulty"] == "EASY"
    assert lines["test_inputs"] == ["3\na b"]
    assert call["kind"] == "call" and call["entry_point"] == "add"
    assert call["starter_code"] == CALL["starter_code"]
    assert "def add(xs, k):" in call["prompt"]
    # repeated input deduped for the problem; oracle keeps every (input, output) pair
    assert [ast.literal_eval(s) for s in call["test_inputs"]] == [[[1, 2], 3], [[4.5], -1]]
    oracle = oracles.iloc[2]
    assert oracle["oracle_kind"] == "io"
    assert oracle["expected_outputs"] == ["[60606]", "[70707.5]", "[60606]"]
    assert len(oracle["inputs"]) == 3
    assert oracles.iloc[0]["expected_outputs"] == ["OUT_THREE\n", "OUT_12\n"]
    assert oracles.iloc[1]["expected_outputs"] == ["OUT_LINES_X\nOUT_LINES_Y"]
    assert oracles.iloc[0]["reference_program"].startswith("a, b = map")
    parquet_roundtrip(problems, oracles)


def test_outputs_never_reach_the_problems_table(write_jsonl, table_text):
    problems, oracles = _load(write_jsonl, [STDIO, LINES, CALL])
    text = table_text(problems)
    for marker in ("OUT_THREE", "OUT_12", "OUT_LINES_X", "OUT_LINES_Y", "60606", "70707"):
        assert marker not in text
        assert marker in table_text(oracles)
    assert "map(int" not in text  # reference solutions stay in the oracle table


def test_no_inputs_is_skipped_and_logged(write_jsonl, caplog):
    empty_string = dict(NO_INPUTS, input_output="")
    with caplog.at_level("WARNING", logger="conself.problems"):
        problems, oracles = _load(write_jsonl, [STDIO, NO_INPUTS, empty_string])
    assert problems["problem_id"].tolist() == ["taco/0"]
    assert len(oracles) == 1
    assert problems.attrs["skipped_no_inputs"] == ["taco/1", "taco/2"]
    assert "skipped 2 problems with no test inputs: ['taco/1', 'taco/2']" in caplog.text


def test_apps_ids_and_difficulty(write_jsonl):
    recs = [dict(STDIO, problem_id=4000, difficulty="interview"), dict(CALL, problem_id=17)]
    problems, _ = _load(write_jsonl, recs, name="apps.jsonl", source="apps")
    assert problems["problem_id"].tolist() == ["apps/4000", "apps/17"]
    assert problems["source"].tolist() == ["apps", "apps"]
    assert problems.iloc[0]["difficulty"] == "interview"


def test_missing_difficulty_is_na(write_jsonl):
    problems, _ = _load(write_jsonl, [LINES])
    assert problems["difficulty"].isna().all()


def test_unencodable_call_inputs_are_dropped(write_jsonl):
    rec = dict(CALL, input_output={"fn_name": "f", "inputs": [[1e400], [2]], "outputs": [1, 2]})
    problems, oracles = _load(write_jsonl, [rec])
    assert problems.iloc[0]["test_inputs"] == ["[2]"]
    assert oracles.iloc[0]["expected_outputs"] == ["2"]


@pytest.mark.parametrize(
    ("bad_line", "pattern"),
    [
        ("{not json", r"taco\.jsonl, record 2: line is not valid JSON"),
        ('["a list"]', r"taco\.jsonl, record 2: expected a JSON object, got list"),
        (
            json.dumps(dict(STDIO, id="abc", input_output="{oops")),
            r"taco\.jsonl, record 2 \(id 'abc'\): field 'input_output': not valid JSON",
        ),
        (
            json.dumps({k: v for k, v in STDIO.items() if k != "question"}),
            r"record 2 \(id '1'\): field 'question': missing required field",
        ),
        (
            json.dumps(dict(STDIO, question=42)),
            r"record 2 \(id '1'\): field 'question': expected a string, got int",
        ),
        (
            json.dumps(dict(STDIO, input_output={"inputs": ["1"], "outputs": []})),
            r"field 'input_output': 1 inputs but 0 outputs",
        ),
        (
            json.dumps(dict(STDIO, input_output={"inputs": ["1"]})),
            r"field 'input_output': missing key 'outputs'",
        ),
        (
            json.dumps(dict(CALL, input_output={"fn_name": "f", "inputs": [3], "outputs": [1]})),
            r"field 'input_output': inputs\[0\] must be a JSON list of arguments",
        ),
        (
            json.dumps(dict(STDIO, input_output={"inputs": [3], "outputs": ["1"]})),
            r"field 'input_output': inputs\[0\] must be a string or a list of lines, got int",
        ),
    ],
)
def test_bad_records_name_file_record_and_field(write_jsonl, bad_line, pattern):
    with pytest.raises(ProblemSourceError, match=pattern):
        _load(write_jsonl, [STDIO, bad_line, CALL])


def test_errors_skip_keeps_good_records(write_jsonl, caplog):
    with caplog.at_level("WARNING", logger="conself.problems"):
        problems, _ = _load(write_jsonl, [STDIO, "{broken", CALL], errors="skip")
    assert problems["problem_id"].tolist() == ["taco/0", "taco/2"]
    assert len(problems.attrs["skipped_invalid"]) == 1
    assert "skipping malformed record" in caplog.text


def test_missing_and_empty_files(write_jsonl, tmp_path):
    with pytest.raises(ProblemSourceError, match=r"taco: .*does not exist: .*nope\.jsonl"):
        load_problems("taco", path=str(tmp_path / "nope.jsonl"))
    with pytest.raises(ProblemSourceError, match=r"taco: .*empty\.jsonl: no problem records"):
        _load(write_jsonl, [], name="empty.jsonl")
    with pytest.raises(ProblemSourceError, match="path to the local data"):
        load_problems("taco")


def test_gzip_json_list_directory_and_parquet(write_jsonl, tmp_path):
    gz, _ = _load(write_jsonl, [STDIO, CALL], name="t.jsonl.gz")
    assert len(gz) == 2
    (tmp_path / "list.json").write_text(json.dumps([STDIO, CALL]))
    as_list, _ = load_problems("taco", path=str(tmp_path / "list.json"))
    assert as_list.equals(gz)
    folder = tmp_path / "shards"
    write_jsonl("shards/a.jsonl", [STDIO])
    write_jsonl("shards/b.jsonl", [CALL])
    shards, _ = load_problems("taco", path=str(folder))
    assert shards["problem_id"].tolist() == ["taco/0", "taco/1"]
    assert shards["kind"].tolist() == ["stdio", "call"]
    table = pa.Table.from_pylist([STDIO, dict(CALL, input_output=CALL["input_output"])])
    pq.write_table(table, tmp_path / "train.parquet")
    from_parquet, _ = load_problems("taco", path=str(tmp_path / "train.parquet"))
    assert from_parquet["test_inputs"].tolist() == gz["test_inputs"].tolist()
    # a Hugging Face ``save_to_disk`` shard is an Arrow IPC stream
    with pa.OSFile(str(tmp_path / "data-00000-of-00001.arrow"), "wb") as sink:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    from_arrow, _ = load_problems("taco", path=str(tmp_path / "data-00000-of-00001.arrow"))
    assert from_arrow["test_inputs"].tolist() == gz["test_inputs"].tolist()


def test_limit_and_duplicate_ids(write_jsonl):
    problems, oracles = _load(write_jsonl, [STDIO, NO_INPUTS, CALL, LINES], limit=2)
    assert problems["problem_id"].tolist() == ["taco/0", "taco/2"]
    assert oracles["problem_id"].tolist() == ["taco/0", "taco/2"]
    with pytest.raises(
        ProblemSourceError, match=r"record 2 \(id 'x'\): duplicate problem_id 'taco/x'"
    ):
        _load(write_jsonl, [dict(STDIO, id="x"), dict(CALL, id="x")])
