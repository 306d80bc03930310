"""Fixtures of the deployment suite; its helpers live in deploy_env.py (tests import them
from there: every suite's conftest shares the module name `conftest`)."""
from deploy_env import prefix, worker_config, worker_dir  # noqa: F401  (fixtures)
