"""The azfunc package must come from the installed wheel, never from src/."""
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
APPS = ROOT / 'tests' / 'apps'


@pytest.fixture
def apps():
    return APPS


def pytest_sessionstart(session):
    """The suite tests the installed package, not the source tree."""
    import sys

    import azfunc
    assert azfunc.__file__.startswith(sys.prefix), azfunc.__file__
