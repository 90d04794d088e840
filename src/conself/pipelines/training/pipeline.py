"""Training: weighted pairs -> a Con-DPO LoRA adapter on the round's starting model."""

from kedro.pipeline import Pipeline, node

from .nodes import train_round_model


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                train_round_model,
                inputs=["preference_pairs", "base_model", "params:training"],
                outputs=["round_model", "training_metrics"],
                name="train_round_model",
            )
        ],
        tags=["training"],
    )
