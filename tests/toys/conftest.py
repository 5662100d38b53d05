"""Session fixtures for the toy tests: one model cache per test session and each quick simulation run once.

``WTFLOW_CACHE`` is pointed at a session temporary directory unless it is already set (a caller that wants the
toys, paper figures and notebooks of one session to share trained models sets it once, before pytest starts).
"""

import pytest


@pytest.fixture(scope="session", autouse=True)
def toys_cache(wtflow_cache):
    """Every toy test runs with the session cache of ``tests/conftest.py`` (shared with notebooks and figures)."""
    return wtflow_cache


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
