"""Execution: sampled programs x test inputs -> outcome classes and canonical outputs."""

from kedro.pipeline import Pipeline, node

from .nodes import execute_samples


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                execute_samples,
                inputs=["samples", "problems", "params:execution", "params:resume"],
                outputs=["executions", "execution_metrics"],
                name="execute_samples",
            )
        ],
        tags=["execution"],
    )
