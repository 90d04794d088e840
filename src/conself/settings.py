"""Kedro project settings for conself."""

from conself.hooks import MlflowTableArtifacts

HOOKS = (MlflowTableArtifacts(),)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
