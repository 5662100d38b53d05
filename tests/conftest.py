"""Shared pytest setup: headless plotting, the automatic skip of `gpu` tests on machines without CUDA and the
session's toys model cache (`wtflow_cache`)."""

import os

# Set before any test module imports matplotlib, so no test ever tries to open a window.
os.environ["MPLBACKEND"] = "Agg"

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA: torch.cuda.is_available() is False")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def wtflow_cache(tmp_path_factory: pytest.TempPathFactory):
    """The session's toys model cache: WTFLOW_CACHE from the environment, else <basetemp>/wtflow_cache, which stays in
    the environment until the session ends so that later test modules (tests/toys) reuse the same trained models."""
    previous = os.environ.get("WTFLOW_CACHE")
    path = previous or str(tmp_path_factory.getbasetemp() / "wtflow_cache")
    os.makedirs(path, exist_ok=True)
    os.environ["WTFLOW_CACHE"] = path
    yield path
    if previous is None:
        os.environ.pop("WTFLOW_CACHE", None)
