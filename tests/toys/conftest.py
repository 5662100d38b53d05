"""Session fixtures for the toy tests: one model cache per test session and each quick simulation run once.

``WTFLOW_CACHE`` is pointed at a session temporary directory unless it is already set (a caller that wants the
toys, paper figures and notebooks of one session to share trained models sets it once, before pytest starts).
"""

import os

import pytest

from toys import CACHE_ENV


@pytest.fixture(scope="session", autouse=True)
def toys_cache(tmp_path_factory):
    previous = os.environ.get(CACHE_ENV)
    if previous is None:
        os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("wtflow-cache"))
    yield os.environ[CACHE_ENV]
    if previous is None:
        os.environ.pop(CACHE_ENV, None)


def _quick(name):
    from toys import load

    return load(name).simulate(quick=True, seed=0, progress=False)


@pytest.fixture(scope="session")
def ring_result(toys_cache):
    return _quick("ring")


@pytest.fixture(scope="session")
def mixture_result(toys_cache):
    return _quick("mixture")


@pytest.fixture(scope="session")
def supports_result(toys_cache):
    return _quick("supports")


@pytest.fixture(scope="session")
def radial_result(toys_cache):
    return _quick("radial")


@pytest.fixture(scope="session")
def singularity_result(toys_cache):
    return _quick("singularity")
