"""Kedro project settings for conself."""

from conself.hooks import MlflowTableArtifacts, RoundTracking

HOOKS = (MlflowTableArtifacts(), RoundTracking())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
