"""The azfunc package must come from the installed wheel, never from src/."""
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
APPS = ROOT / 'tests' / 'apps'


@pytest.fixture
def apps():
    return APPS
