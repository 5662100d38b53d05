"""``python -m theory.claims`` writes to a run folder unless --update is given; the committed files stay put."""

import argparse
from pathlib import Path

import pytest

from theory.claims import __main__ as cli

THEORY = Path(__file__).resolve().parents[2] / "theory"


def test_default_run_does_not_touch_committed_files(tmp_path, monkeypatch):
    committed = {name: (THEORY / name).read_bytes() for name in ("CLAIMS.md", "ERRATA.md")}
    monkeypatch.setattr(cli, "DEFAULT_RUNS_DIR", tmp_path / "runs")
    assert cli.main(["--quick", "--only", "lemma1", "theorem1"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("quick-")
    assert "`lemma1`" in (run_dir / "CLAIMS.md").read_text() and (run_dir / "ERRATA.md").exists()
    assert {name: (THEORY / name).read_bytes() for name in committed} == committed


def test_out_folder_and_update_target():
    assert cli.output_dir(argparse.Namespace(update=False, out="somewhere"), "full") == Path("somewhere")
    assert cli.output_dir(argparse.Namespace(update=True, out=None), "full") == cli.THEORY_DIR
    assert cli.output_dir(argparse.Namespace(update=False, out=None), "full").parent == cli.DEFAULT_RUNS_DIR


@pytest.mark.parametrize("argv", [["--update", "--quick"], ["--update", "--only", "lemma1"], ["--only", "nope"]])
def test_bad_options_are_refused(argv):
    with pytest.raises(SystemExit):
        cli.main(argv)
