"""A full ConSelf round on the tiny model through a real ``KedroSession``.

The project (conf, the tiny problems, pyproject.toml, empty data layers) is copied
under a temporary folder and run there with ``--env tiny``, so its data, adapters and
the sqlite MLflow store land in the copy. The only change to the tiny environment is
``model.tiny.steps``, set to the session's tiny checkpoint, which is placed in the
copy's model cache: the round reuses it instead of pre-training a second model.
One run is shared by every check below.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest
from tiny_project import copy_project

from conself.consensus.curriculum import REASONS
from conself.sampling import code_prompt, extract_program

pytestmark = pytest.mark.slow

DATASETS = (
    "problems",
    "eval_problems",
    "oracles",
    "observations",
    "samples",
    "executions",
    "problem_stats",
    "sample_consensus",
    "curriculum",
    "preference_pairs",
    "base_model",
    "round_model",
    "eval_samples",
    "eval_results",
    "round_report",
)


class Round:
    def __init__(
        self, path: Path, data: dict[str, Any], params: dict[str, Any], left_open: list[str]
    ) -> None:
        self.path = path
        self.data = data
        self.params = params
        self.left_open = left_open  # MLflow runs still active after the session

    def __getitem__(self, name: str) -> Any:
        return self.data[name]


@pytest.fixture(scope="module")
def tiny_round(
    tmp_path_factory: pytest.TempPathFactory,
    project_root: Path,
    tiny_checkpoint_dir: Path,
    tiny_model_spec: dict,
) -> Round:
    import mlflow
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = copy_project(project_root, tmp_path_factory.mktemp("project"), tiny_checkpoint_dir)

    previous_uri = mlflow.get_tracking_uri()
    previous_env = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("KEDRO_DISABLE_TELEMETRY", "true")
        try:
            bootstrap_project(project)
            runtime = {"model": {"tiny": {"steps": tiny_model_spec["steps"]}}}
            with KedroSession.create(
                project_path=project, env="tiny", runtime_params=runtime
            ) as session:
                session.run()
                context = session.load_context()
                data = {name: context.catalog.load(name) for name in DATASETS}
                params = context.params
        finally:
            # Every run still open is noted, then ended against the project's store: one
            # left open would be ended at interpreter exit against the restored default
            # URI, creating an mlflow.db in the directory the tests were started from.
            left_open = []
            while (active := mlflow.active_run()) is not None:
                left_open.append(active.info.run_id)
                mlflow.end_run()
            mlflow.set_tracking_uri(previous_uri)
            for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
                if key not in previous_env:
                    mp.delenv(key)
    # The round really used the session's checkpoint from the copy's cache.
    assert data["base_model"]["path"].endswith(tiny_checkpoint_dir.name)
    return Round(project, data, params, left_open)


# ---- problems --------------------------------------------------------------------------------


def test_problems_and_eval_problems_are_disjoint(tiny_round: Round) -> None:
    problems, evaluation = tiny_round["problems"], tiny_round["eval_problems"]
    assert len(problems) > 0 and len(evaluation) > 0
    assert set(problems["problem_id"]).isdisjoint(evaluation["problem_id"])
    assert problems["problem_id"].is_unique and evaluation["problem_id"].is_unique
    assert (problems["test_inputs"].map(len) > 0).all()
    # Oracles sit in their own table and cover exactly the loaded problems.
    oracle_ids = set(tiny_round["oracles"]["problem_id"])
    assert oracle_ids == set(problems["problem_id"]) | set(evaluation["problem_id"])
    assert "expected_outputs" not in problems.columns


# ---- generation ------------------------------------------------------------------------------


def test_observations_at_most_num_observations_per_problem(tiny_round: Round) -> None:
    obs = tiny_round["observations"]
    limit = tiny_round.params["generation"]["num_observations"]
    assert len(obs) > 0
    assert set(obs["problem_id"]) <= set(tiny_round["problems"]["problem_id"])
    assert obs.groupby("problem_id").size().max() <= limit
    assert obs["observation"].str.strip().str.len().gt(0).all()


def test_samples_hold_a_program_from_a_closed_python_fence(tiny_round: Round) -> None:
    samples = tiny_round["samples"]
    gen = tiny_round.params["generation"]
    assert len(samples) > 0
    assert set(samples["problem_id"]) <= set(tiny_round["problems"]["problem_id"])
    for completion, program in zip(samples["completion"], samples["program"], strict=True):
        assert isinstance(program, str) and program.strip()
        assert "```python" in completion and completion.count("```") >= 2
        assert extract_program(completion) == program
    for _, group in samples.groupby("problem_id"):
        assert group["sample_id"].tolist() == list(range(len(group)))
    per_problem = gen["num_observations"] * gen["num_code_per_observation"]
    assert samples.groupby("problem_id").size().max() <= per_problem
    assert (samples["n_tokens"] <= gen["code_max_new_tokens"]).all()
    assert samples["mean_nll"].map(math.isfinite).all()
    assert samples["mean_topk_entropy"].between(0, math.log(15) + 1e-6).all()


# ---- execution -------------------------------------------------------------------------------


def test_executions_cover_every_program_on_every_input(tiny_round: Round) -> None:
    samples, executions = tiny_round["samples"], tiny_round["executions"]
    n_inputs = tiny_round["problems"].set_index("problem_id")["test_inputs"].map(len)
    assert len(executions) == int(samples["problem_id"].map(n_inputs).sum())
    keys = executions[["problem_id", "sample_id", "input_index"]]
    assert not keys.duplicated().any()
    expected = {
        (p, s, i)
        for p, s in zip(samples["problem_id"], samples["sample_id"], strict=True)
        for i in range(n_inputs[p])
    }
    assert set(map(tuple, keys.itertuples(index=False))) == expected


def test_output_is_missing_exactly_where_the_run_crashed(tiny_round: Round) -> None:
    executions = tiny_round["executions"]
    crashed = executions["outcome"] != "ok"
    assert (executions["output"].isna() == crashed).all()
    assert crashed.any() or (~crashed).any()


# ---- entropy and curriculum ------------------------------------------------------------------


def test_problem_stats_are_consistent(tiny_round: Round) -> None:
    stats = tiny_round["problem_stats"].set_index("problem_id")
    samples = tiny_round["samples"]
    assert set(stats.index) == set(samples["problem_id"])
    assert stats["crash_rate"].between(0.0, 1.0).all()
    counts = samples.groupby("problem_id").size()
    assert (stats["n_samples"] == counts.reindex(stats.index)).all()
    assert (stats["crash_rate"] - stats["n_fully_crashed"] / stats["n_samples"]).abs().max() < 1e-9
    all_crashed = stats["n_fully_crashed"] == stats["n_samples"]
    assert (stats["semantic_entropy"].isna() == all_crashed).all()
    assert (stats["semantic_entropy"].dropna() >= 0).all()


def test_curriculum_reasons_and_selection_rule(tiny_round: Round) -> None:
    curriculum = tiny_round["curriculum"]
    params = tiny_round.params["curriculum"]
    assert set(curriculum["problem_id"]) == set(tiny_round["problem_stats"]["problem_id"])
    assert set(curriculum["reason"]) <= set(REASONS)
    assert (curriculum["selected"] == (curriculum["reason"] == "selected")).all()
    chosen = curriculum[curriculum["selected"]]
    assert (chosen["semantic_entropy"] > 0).all()
    assert (chosen["normalized_entropy"] < params["tau"]).all()
    assert (chosen["crash_rate"] < params["max_crash_rate"]).all()


# ---- preference pairs ------------------------------------------------------------------------


def test_pairs_follow_the_consensus_rules(tiny_round: Round) -> None:
    pairs = tiny_round["preference_pairs"]
    curriculum = tiny_round["curriculum"]
    samples = tiny_round["samples"].set_index(["problem_id", "sample_id"])
    consensus = tiny_round["sample_consensus"].set_index(["problem_id", "sample_id"])["consensus"]
    problems = tiny_round["problems"].set_index("problem_id")
    max_pairs = tiny_round.params["preference"]["max_pairs_per_problem"]

    selected = set(curriculum.loc[curriculum["selected"], "problem_id"])
    assert set(pairs["problem_id"]) <= selected
    if len(pairs):
        assert pairs.groupby("problem_id").size().max() <= max_pairs
    for row in pairs.itertuples(index=False):
        chosen_key = (row.problem_id, row.chosen_sample_id)
        rejected_key = (row.problem_id, row.rejected_sample_id)
        assert row.weight == pytest.approx(consensus[chosen_key], abs=1e-12)
        assert consensus[rejected_key] < consensus[chosen_key]
        assert samples.at[chosen_key, "program"] != samples.at[rejected_key, "program"]
        assert row.chosen == samples.at[chosen_key, "completion"]
        assert row.rejected == samples.at[rejected_key, "completion"]
        problem = problems.loc[row.problem_id]
        assert row.prompt == code_prompt(problem["prompt"], problem["kind"], problem["entry_point"])
    # The plain prompt carries none of the round's observations.
    observations = set(tiny_round["observations"]["observation"].str.strip())
    assert not any(o in p for p in pairs["prompt"] for o in observations)


def test_training_follows_the_pairs(tiny_round: Round) -> None:
    pairs, round_model = tiny_round["preference_pairs"], tiny_round["round_model"]
    assert round_model["base"] == tiny_round["base_model"]
    if pairs.empty:
        assert round_model["adapter_dir"] is None
        assert round_model["skipped_reason"]
    else:
        adapter = tiny_round.path / round_model["adapter_dir"]
        assert (adapter / "adapter_config.json").is_file()
        assert not [p for p in adapter.parent.iterdir() if p.name.startswith(".training-")]


# ---- evaluation and report -------------------------------------------------------------------


def test_evaluation_covers_both_models_on_the_eval_problems(tiny_round: Round) -> None:
    results, evaluation = tiny_round["eval_results"], tiny_round["eval_problems"]
    assert set(results["model"]) == {"start", "trained"}
    for _, table in results.groupby("model"):
        assert sorted(table["problem_id"]) == sorted(evaluation["problem_id"])
    assert set(tiny_round["eval_samples"]["problem_id"]) == set(evaluation["problem_id"])


def test_round_report_agrees_with_the_tables(tiny_round: Round) -> None:
    report = tiny_round["round_report"]
    curriculum, pairs = tiny_round["curriculum"], tiny_round["preference_pairs"]
    results = tiny_round["eval_results"]
    assert report["n_problems"] == len(tiny_round["problems"])
    assert report["curriculum_size"] == int(curriculum["selected"].sum())
    assert report["curriculum_reasons"] == curriculum["reason"].value_counts().to_dict()
    assert report["n_pairs"] == len(pairs)
    if len(pairs):
        assert report["mean_pair_weight"] == pytest.approx(pairs["weight"].mean())
    else:
        assert report["mean_pair_weight"] is None
    assert report["n_eval_problems"] == len(tiny_round["eval_problems"])
    expected = results.groupby("model")["passed"].mean().to_dict()
    assert report["pass_at_1"] == pytest.approx(expected)
    assert report["adapter_dir"] == tiny_round["round_model"]["adapter_dir"]


# ---- MLflow ----------------------------------------------------------------------------------


def _metric(metrics: dict[str, float], name: str) -> float:
    """kedro-mlflow prefixes a metric with its dataset's name (``<dataset>.<name>``)."""
    found = [v for k, v in metrics.items() if k == name or k.endswith("." + name)]
    assert len(found) == 1, f"metric {name!r} logged {len(found)} times: {sorted(metrics)}"
    return found[0]


def test_the_session_leaves_no_mlflow_run_active(tiny_round: Round) -> None:
    """In a notebook, a run left active would take the user's next logs and be ended at
    exit against whatever store is configured by then."""
    assert tiny_round.left_open == []


def test_mlflow_store_has_the_round(tiny_round: Round) -> None:
    from mlflow.tracking import MlflowClient

    store = tiny_round.path / "mlflow.db"
    assert store.is_file()
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("conself")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    params, metrics = run.data.params, run.data.metrics
    assert float(params["curriculum.tau"]) == tiny_round.params["curriculum"]["tau"]
    assert params["model.name"] == "tiny"

    report, pairs = tiny_round["round_report"], tiny_round["preference_pairs"]
    assert _metric(metrics, "curriculum.size") == report["curriculum_size"]
    assert _metric(metrics, "preference.n_pairs") == len(pairs)
    assert _metric(metrics, "evaluation.pass_at_1.start") == pytest.approx(
        report["pass_at_1"]["start"]
    )
    assert _metric(metrics, "evaluation.pass_at_1.trained") == pytest.approx(
        report["pass_at_1"]["trained"]
    )
    if len(pairs):
        assert _metric(metrics, "preference.mean_weight") == pytest.approx(pairs["weight"].mean())
        assert math.isfinite(_metric(metrics, "training.train_loss"))
        assert [a.path for a in client.list_artifacts(run.info.run_id, "adapter")]
    tables = {a.path for a in client.list_artifacts(run.info.run_id, "tables")}
    assert "tables/curriculum.parquet" in tables
    assert "tables/preference_pairs.parquet" in tables
