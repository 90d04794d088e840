"""The registered pipelines and the oracle-isolation invariant, over the real graph."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from kedro.pipeline import Node, Pipeline, node

from conself.pipeline_registry import STAGES, register_pipelines

SEVEN = {"generation", "execution", "entropy", "curriculum", "preference", "training", "evaluation"}
# What training consumes and what it produces: nothing on the way may read oracles.
PROTECTED_OUTPUTS = ("preference_pairs", "round_model")


def upstream_nodes(pipeline: Pipeline, outputs: Iterable[str]) -> set[Node]:
    """Every node whose result (transitively) feeds the nodes producing ``outputs``,
    those producing nodes included."""
    producers: dict[str, Node] = {}
    for n in pipeline.nodes:
        for out in n.outputs:
            producers[out] = n
    missing = [o for o in outputs if o not in producers]
    if missing:
        raise ValueError(f"no node produces {missing}")
    seen: set[Node] = set()
    stack = [producers[o] for o in outputs]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(producers[i] for i in current.inputs if i in producers)
    return seen


def oracle_readers_upstream(
    pipeline: Pipeline, outputs: Iterable[str] = PROTECTED_OUTPUTS, oracle: str = "oracles"
) -> list[str]:
    """Names of the nodes upstream of ``outputs`` that take ``oracle`` as input."""
    return sorted(n.name for n in upstream_nodes(pipeline, outputs) if oracle in n.inputs)


@pytest.fixture(scope="module")
def pipelines(kedro_project: None) -> dict[str, Pipeline]:
    return register_pipelines()


def test_seven_stages_and_default_are_registered(pipelines: dict[str, Pipeline]) -> None:
    assert set(pipelines) == SEVEN | {"__default__"}
    assert set(STAGES) == SEVEN
    for name in SEVEN:
        assert pipelines[name].nodes, f"pipeline {name!r} is empty"


def test_default_runs_every_node_of_the_seven(pipelines: dict[str, Pipeline]) -> None:
    default = {n.name for n in pipelines["__default__"].nodes}
    for name in SEVEN:
        stage = {n.name for n in pipelines[name].nodes}
        assert stage <= default, f"{name}: {sorted(stage - default)} not in __default__"
    union = set().union(*({n.name for n in pipelines[s].nodes} for s in SEVEN))
    assert default == union


def test_no_node_upstream_of_pairs_or_training_reads_oracles(
    pipelines: dict[str, Pipeline],
) -> None:
    default = pipelines["__default__"]
    assert oracle_readers_upstream(default) == []
    # The invariant is not vacuous: the graph does read oracles, only downstream.
    readers = {n.name for n in default.nodes if "oracles" in n.inputs}
    assert readers, "no node reads oracles at all"
    upstream = {n.name for n in upstream_nodes(default, PROTECTED_OUTPUTS)}
    assert {"build_preference_pairs", "train_round_model", "prepare_problems"} <= upstream
    assert not readers & upstream


def test_helper_agrees_with_kedro_own_slicing(pipelines: dict[str, Pipeline]) -> None:
    default = pipelines["__default__"]
    ours = {n.name for n in upstream_nodes(default, PROTECTED_OUTPUTS)}
    kedros = {n.name for n in default.to_outputs(*PROTECTED_OUTPUTS).nodes}
    assert ours == kedros


def _identity(*args):
    return args[0]


def test_helper_flags_an_oracle_reader_upstream() -> None:
    """A node that reads oracles two hops before the pairs is caught; downstream is not."""
    leaky = Pipeline(
        [
            node(_identity, ["problems", "oracles"], "hinted_problems", name="leak"),
            node(_identity, ["hinted_problems", "samples"], "curriculum", name="curate"),
            node(_identity, ["curriculum", "samples"], "preference_pairs", name="pairs"),
            node(_identity, ["preference_pairs"], "round_model", name="train"),
            node(_identity, ["round_model", "oracles"], "eval_results", name="score"),
        ]
    )
    assert oracle_readers_upstream(leaky) == ["leak"]
    clean = Pipeline([n for n in leaky.nodes if n.name != "leak"])
    clean += Pipeline([node(_identity, "problems", "hinted_problems", name="no_leak")])
    assert oracle_readers_upstream(clean) == []
    # A reader feeding only the training side (not the pairs) is caught as well.
    via_training = Pipeline(
        [
            node(_identity, ["preference_pairs", "oracles"], "filtered_pairs", name="filter"),
            node(_identity, ["filtered_pairs"], "round_model", name="train"),
            node(_identity, ["samples"], "preference_pairs", name="pairs"),
        ]
    )
    assert oracle_readers_upstream(via_training) == ["filter"]


def test_helper_refuses_unknown_outputs() -> None:
    with pytest.raises(ValueError, match="no node produces"):
        upstream_nodes(Pipeline([node(_identity, "a", "b", name="n")]), ["preference_pairs"])
