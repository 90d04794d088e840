"""Curriculum: problem statistics -> the selected low-but-non-zero entropy problems."""

from kedro.pipeline import Pipeline, node

from .nodes import build_curriculum


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                build_curriculum,
                inputs=["problem_stats", "params:curriculum"],
                outputs=["curriculum", "curriculum_metrics"],
                name="build_curriculum",
            )
        ],
        tags=["curriculum"],
    )
