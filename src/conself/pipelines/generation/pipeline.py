"""Generation: problems -> observations -> sampled programs."""

from kedro.pipeline import Pipeline, node

from .nodes import generate_observations, generate_samples, prepare_problems, resolve_base_model


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                prepare_problems,
                inputs="params:problems",
                outputs=["problems", "eval_problems", "oracles"],
                name="prepare_problems",
            ),
            node(
                resolve_base_model,
                inputs="params:model",
                outputs="base_model",
                name="resolve_base_model",
            ),
            node(
                generate_observations,
                inputs=["problems", "base_model", "params:generation", "params:resume"],
                outputs="observations",
                name="generate_observations",
            ),
            node(
                generate_samples,
                inputs=[
                    "problems",
                    "observations",
                    "base_model",
                    "params:generation",
                    "params:resume",
                ],
                outputs=["samples", "generation_metrics"],
                name="generate_samples",
            ),
        ],
        tags=["generation"],
    )
