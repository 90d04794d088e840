"""Hub paths: the download step is replaced by a local snapshot folder; parsing is real."""

from __future__ import annotations

import json

import huggingface_hub
import pytest

from conself.problems import ProblemSourceError, load_problems


def _record(qid: str, stdin: str, stdout: str) -> dict:
    return {
        "question_id": qid,
        "question_title": qid,
        "question_content": "Echo the input.",
        "platform": "atcoder",
        "contest_date": "2024-01-01T00:00:00",
        "starter_code": "",
        "difficulty": "easy",
        "public_test_cases": json.dumps([{"input": stdin, "output": stdout, "testtype": "stdin"}]),
        "private_test_cases": "[]",
        "metadata": "{}",
    }


STDIN = _record("abc301_a", "5\n", "5\n")
FUNCTIONAL = _record("2847", "7\n", "7\n")


@pytest.fixture
def snapshot(tmp_path, monkeypatch):
    """A local folder laid out like the hub's LiveCodeBench snapshot; records the call."""
    folder = tmp_path / "snapshot"
    folder.mkdir()
    (folder / "test.jsonl").write_text("\n".join(json.dumps(r) for r in (STDIN, FUNCTIONAL)))
    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    return calls


def test_hub_path_reads_the_snapshot_like_a_local_folder(snapshot):
    problems, oracles = load_problems(
        "livecodebench", "hf://datasets/livecodebench/code_generation_lite@v2"
    )
    assert list(problems["problem_id"]) == ["livecodebench/abc301_a", "livecodebench/2847"]
    assert len(oracles) == 2
    repo_id, kwargs = snapshot[0]
    assert repo_id == "livecodebench/code_generation_lite"
    assert kwargs["repo_type"] == "dataset"
    assert kwargs["revision"] == "v2"


def test_malformed_hub_path_is_a_clear_error(snapshot):
    with pytest.raises(ProblemSourceError, match="hf://datasets/<owner>/<name>"):
        load_problems("livecodebench", "hf://datasets/just-a-name")
    assert snapshot == []


def test_download_failure_names_the_path(monkeypatch):
    def offline(repo_id, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(ProblemSourceError, match=r"hf://datasets/a/b: could not download"):
        load_problems("taco", "hf://datasets/a/b")
