"""Fixtures of the storage suite; its helpers live in storage_env.py (tests import them
from there: every suite's conftest shares the module name `conftest`)."""
from storage_env import azurite, storage_app  # noqa: F401  (fixtures)
