"""``kedro run``, extended to run several self-improvement rounds in one command.

Kedro runs one pipeline per session; a round is one run of the default pipeline
with the runtime parameter ``round``. With ``rounds: R`` (``kedro run --params
rounds=3``) this command runs R sessions in turn: round N+1 starts from round N's
adapter (``model.adapter``), each round is its own MLflow run, nested under one
parent run per command, and the collapse guard (``training.min_pairs``) stops
early with the reason logged and tracked. Any pipeline or node selection runs
exactly as Kedro's own ``run`` (one round, numbered by ``--params round=N``).
All of Kedro's ``run`` options are kept.
"""

from __future__ import annotations

import logging
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.session import KedroSession

from conself.hooks import RoundTracking

logger = logging.getLogger(__name__)

# Options that select part of the pipeline: such a run is one round, not a loop.
_SELECTIONS = (
    "pipeline",
    "pipelines",
    "node_names",
    "from_nodes",
    "to_nodes",
    "from_inputs",
    "to_outputs",
    "tags",
    "namespaces",
)


@click.group(name="conself")
def cli() -> None:
    """conself's project commands."""


def run_rounds(**options: Any) -> None:
    """Run ``rounds`` rounds (a parameter), or one Kedro run when part is selected."""
    runtime_params = dict(options.get("params") or {})
    if any(options.get(name) for name in _SELECTIONS):
        kedro_run.callback(**options)
        return
    plan = _round_plan(options, runtime_params)
    first, count, adapter = plan["first"], plan["rounds"], plan["adapter"]
    if count == 1:
        kedro_run.callback(**options)
        return
    import mlflow

    client = mlflow.MlflowClient()
    parent = client.create_run(
        plan["experiment_id"],
        run_name=f"rounds_{first}-{first + count - 1}",
        tags={"conself.rounds": str(count), "conself.first_round": str(first)},
    )
    parent_id = parent.info.run_id
    RoundTracking.parent_run_id = parent_id
    status = "FAILED"
    try:
        for number in range(first, first + count):
            params = {**runtime_params, "round": number}
            if adapter:
                params["model"] = {**(runtime_params.get("model") or {}), "adapter": adapter}
            logger.info(
                "round %d of %d (first %d), starting adapter %s", number, count, first, adapter
            )
            RoundTracking.outputs = {}
            kedro_run.callback(**{**options, "params": params})
            # kedro-mlflow re-enters the round's run at every node; whatever is left on
            # the active-run stack would make the next round log into this round's run.
            while mlflow.active_run() is not None:
                mlflow.end_run()
            round_model = RoundTracking.outputs.get("round_model") or {}
            _log_round(client, parent_id, number, RoundTracking.outputs.get("round_report") or {})
            client.log_metric(parent_id, "rounds.completed", number - first + 1, step=number)
            reason = round_model.get("stop_reason")
            if reason:
                logger.warning("stopping after round %d: %s", number, reason)
                client.set_tag(parent_id, "conself.stop_reason", f"round {number}: {reason}")
                client.log_metric(parent_id, "rounds.stopped_early", 1.0, step=number)
                break
            adapter = round_model.get("adapter_dir")
        status = "FINISHED"
    finally:
        RoundTracking.parent_run_id = None
        client.set_terminated(parent_id, status)


def _round_plan(options: dict[str, Any], runtime_params: dict[str, Any]) -> dict[str, Any]:
    """Read ``rounds``, ``round`` and ``model.adapter`` as this command's config resolves them."""
    import mlflow

    with KedroSession.create(
        env=options.get("env"),
        conf_source=options.get("conf_source"),
        runtime_params=runtime_params,
    ) as session:
        context = session.load_context()  # kedro-mlflow sets up the tracking store here
        params = context.params
        experiment = mlflow.get_experiment_by_name(context.mlflow.tracking.experiment.name)
    rounds = int(params.get("rounds", 1))
    if rounds < 1:
        raise click.BadParameter(f"parameter 'rounds' must be >= 1, got {rounds}")
    return {
        "rounds": rounds,
        "first": int(params.get("round", 1)),
        "adapter": (params.get("model") or {}).get("adapter"),
        "experiment_id": experiment.experiment_id if experiment else "0",
    }


def _log_round(client: Any, parent_id: str, number: int, report: dict[str, Any]) -> None:
    """The round's headline numbers on the parent run, one step per round (pass@1 by round)."""
    values = {
        "round.curriculum_size": report.get("curriculum_size"),
        "round.n_pairs": report.get("n_pairs"),
        "round.mean_pair_weight": report.get("mean_pair_weight"),
        **{
            f"round.pass_at_1.{model}": value
            for model, value in (report.get("pass_at_1") or {}).items()
        },
    }
    for key, value in values.items():
        if value is not None:
            client.log_metric(parent_id, key, float(value), step=number)


run = click.Command(
    name="run",
    params=list(kedro_run.params),
    callback=run_rounds,
    help=(
        "Run the pipeline. A full run executes `rounds` self-improvement rounds "
        "(parameter, default 1); each round is an MLflow run nested under one parent. "
        "Options are Kedro's own."
    ),
)
cli.add_command(run)
