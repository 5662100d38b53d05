"""The student notebooks: paired with their py:percent copies and in sync, stored without outputs, indexed in
notebooks/README.md, and every one executes at quick scale (WTFLOW_QUICK=1).

Execution shares the toys' model cache with the rest of the session (``WTFLOW_CACHE`` from the environment, else
``<pytest basetemp>/wtflow_cache``) and runs two notebooks at a time, each in its own kernel process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the 'dev' extra installs nbformat")
jupytext = pytest.importorskip("jupytext", reason="the 'dev' extra installs jupytext")

NB_DIR = Path(__file__).resolve().parent.parent / "notebooks"
PY_FILES = sorted(NB_DIR.glob("[0-9][0-9]_*.py"))
NAMES = [p.stem for p in PY_FILES]
QUICK_LINE = 'QUICK = bool(os.environ.get("CI")) or os.environ.get("WTFLOW_QUICK") == "1"'

# Runs one notebook in a fresh kernel; a failing cell raises CellExecutionError (traceback on stderr, exit 1).
RUNNER = """
import sys
import nbformat
from nbclient import NotebookClient

nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
"""


# Every notebook must exist; more may be added (each then needs its twin and an index entry).
REQUIRED = ("00", "01", "02", "03", "04", "05", "06", "07")


def test_the_notebooks_each_with_a_paired_copy_and_an_index_entry():
    assert {name[:2] for name in NAMES} >= set(REQUIRED), NAMES
    index = (NB_DIR / "README.md").read_text()
    for py in PY_FILES:
        assert py.with_suffix(".ipynb").exists(), f"{py.name} has no .ipynb twin"
        assert f"({py.with_suffix('.ipynb').name})" in index, f"notebooks/README.md does not link {py.stem}.ipynb"
    assert sorted(NB_DIR.glob("*.ipynb")) == [p.with_suffix(".ipynb") for p in PY_FILES]


@pytest.mark.parametrize("name", NAMES)
def test_paired_copies_in_sync_and_without_outputs(name):
    py, ipynb = NB_DIR / f"{name}.py", NB_DIR / f"{name}.ipynb"
    stored = nbformat.read(ipynb, as_version=4)
    nbformat.validate(stored)
    for cell in stored.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{ipynb.name}: a code cell has stored outputs"
            assert cell.execution_count is None, f"{ipynb.name}: a code cell has an execution count"
    assert stored.metadata.get("kernelspec", {}).get("name") == "python3"
    paired = jupytext.read(py)
    as_cells = lambda nb: [(c.cell_type, c.source) for c in nb.cells]  # noqa: E731
    assert as_cells(paired) == as_cells(stored), (
        f"{name}: .py and .ipynb differ; regenerate with `jupytext --to ipynb notebooks/{name}.py`"
    )
    params = [c for c in stored.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and QUICK_LINE in params[0].source, f"{name}: needs one 'parameters' cell with QUICK"
    assert stored.cells[0].cell_type == "markdown" and stored.cells[0].source.startswith("# ")
    assert "eq." in stored.cells[0].source, f"{name}: the introduction cites no equation of the paper"
    closing = "\n".join(c.source for c in stored.cells[-3:] if c.cell_type == "markdown")
    assert "## What to take away" in closing and "## Exercises" in closing, f"{name}: no take-aways and exercises"
    exercises = closing.split("## Exercises", 1)[1]
    assert sum(line.lstrip()[:2] in {"1.", "2.", "3."} for line in exercises.splitlines()) >= 2, name


@pytest.fixture(scope="module")
def executed(wtflow_cache: str) -> dict[str, tuple[int, str, float]]:
    """name -> (exit status, stderr tail, seconds) of executing each stored notebook at quick scale."""
    cache = wtflow_cache
    # The research packages are not installed (only wtflow is): the kernels find them through PYTHONPATH, as a
    # student's kernel does through the notebooks' own sys.path cell.
    pythonpath = os.pathsep.join(filter(None, [str(NB_DIR.parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "WTFLOW_QUICK": "1", "WTFLOW_CACHE": cache, "MPLBACKEND": "Agg", "PYTHONPATH": pythonpath}

    def run(name: str) -> tuple[str, tuple[int, str, float]]:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", RUNNER, str(NB_DIR / f"{name}.ipynb"), str(NB_DIR)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        return name, (proc.returncode, proc.stderr[-6000:], time.perf_counter() - start)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, NAMES))


@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes_at_quick_scale(executed, name):
    returncode, stderr, seconds = executed[name]
    assert returncode == 0, f"{name} failed after {seconds:.0f} s:\n{stderr}"
