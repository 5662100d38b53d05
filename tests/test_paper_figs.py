"""`python -m paper_figs --quick`: every required output exists (PNG, PDF, CSV), MANIFEST.md maps each to the
paper, the numbers behind the figures are physically meaningful, and one failing figure does not stop the others.

The quick run shares the toys' model cache with the rest of the session (``WTFLOW_CACHE`` from the environment,
else ``<pytest basetemp>/wtflow_cache``), so each quick model is trained once per test session.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import paper_figs
from paper_figs import REGISTRY, FigureSpec, Settings
from paper_figs._core import STATUS_FAILED, STATUS_OK, run_figures, write_manifest

ROOT = Path(__file__).resolve().parent.parent

# entry -> files it must produce (stems get .png and .pdf; names with a suffix are checked as they are)
REQUIRED = {
    "fig1_ring": ["fig1_ring_trajectories", "fig1_ring_radius", "fig1_ring_trapping", "fig1_ring_trajectories.csv",
                  "fig1_ring_summary.csv"],
    "fig4f_radial": ["fig4f_radial_norms", "fig4f_radial_vs_paper", "fig4f_radial_norms.csv",
                     "table12_rfm_radial.csv", "table13_bn_radial.csv", "table14_ln_radial.csv",
                     "tables12-14_radial.md"],
    "fig5_mixture": ["fig5_mixture_cpf", "fig5_mixture_trajectories", "fig5_mixture_cpf.csv"],
    "fig8_supports": ["fig8_supports_trajectories", "fig8_supports_auroc", "fig8_supports_auroc.csv"],
    "singularity": [],
    "lemma56_radius": ["lemma56_radius", "lemma56_radius_layernorm.csv", "lemma56_radius_batchnorm.csv"],
    "prop2_angles": ["prop2_angles", "prop2_angles.csv"],
    "bounds_ratio": ["bounds_ratio", "bounds_ratio.csv"],
    "claims_table": ["claims_table", "claims_table.csv", "claims_table.md"],
    "vectors_benchmark": ["vectors_heatmap", "vectors_table.csv", "vectors_table.md"],
}  # fmt: skip


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory, wtflow_cache: str):
    """Run the command line exactly as `make figures-quick` does, into a temporary folder."""
    out = tmp_path_factory.mktemp("paper_figs_quick")
    cache = wtflow_cache
    env = {**os.environ, "WTFLOW_CACHE": cache, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-m", "paper_figs", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    manifest = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else None
    return out, proc, manifest


def _entries(manifest: dict) -> dict[str, dict]:
    return {e["name"]: e for e in manifest["entries"]}


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_quick_run_succeeds_and_reports_progress(quick_run):
    out, proc, manifest = quick_run
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    )
    assert manifest is not None
    for spec in REGISTRY:
        assert f"[paper_figs] {spec.name}: start" in proc.stdout
        assert re.search(rf"\[paper_figs\] {spec.name}: (ok|failed|not available) in [0-9.]+ s", proc.stdout)


def test_every_required_output_exists(quick_run):
    out, _, manifest = quick_run
    entries = _entries(manifest)
    assert set(entries) == {s.name for s in REGISTRY}
    for name, files in REQUIRED.items():
        entry = entries[name]
        if name == "vectors_benchmark" and entry["status"] == "not available":
            # benchmark results not committed yet: the MANIFEST must say so instead of failing
            assert "no committed vector-benchmark results" in " ".join(entry["notes"])
            continue
        assert entry["status"] == STATUS_OK, f"{name}: {entry['status']} {entry['error'][:2000]}"
        assert entry["verdict"] in paper_figs._core.VERDICTS
        kinds = {Path(o["path"]).suffix for o in entry["outputs"]}
        assert {".png", ".pdf", ".csv"} <= kinds, f"{name} lacks a PNG, PDF or CSV: {sorted(kinds)}"
        listed = {o["path"] for o in entry["outputs"]}
        for f in files:
            wanted = [f] if "." in f else [f"{f}.png", f"{f}.pdf"]
            for w in wanted:
                assert w in listed, f"{name}: {w} not in the manifest"
        for o in entry["outputs"]:
            path = out / o["path"]
            assert path.is_file() and path.stat().st_size > 0, f"{o['path']} missing or empty"
            if path.suffix == ".png":
                assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            if path.suffix == ".pdf":
                assert path.read_bytes()[:5] == b"%PDF-"


def test_manifest_maps_each_output_to_the_paper(quick_run):
    out, _, manifest = quick_run
    text = (out / "MANIFEST.md").read_text()
    specs = {s.name: s for s in REGISTRY}
    for entry in manifest["entries"]:
        spec = specs[entry["name"]]
        assert f"## {spec.name}" in text
        assert f"`{spec.command(True)}`" in text, "each entry names the command that made it"
        for o in entry["outputs"]:
            row = next((line for line in text.splitlines() if line.startswith(f"| `{o['path']}` |")), None)
            assert row is not None, f"{o['path']} not in MANIFEST.md"
            assert spec.paper.replace("|", "\\|") in row, f"{o['path']}: paper reference missing in {row!r}"
        if entry["status"] == STATUS_OK and entry["verdict"] != paper_figs.REPRODUCED:
            # a difference from the paper is spelled out with numbers
            assert entry["differs"], f"{spec.name}: verdict {entry['verdict']!r} but no 'differs' lines"
            assert any(ch.isdigit() for line in entry["differs"] for ch in line)


def test_radial_table_step0_layernorm_is_the_gaussian_radius(quick_run):
    """Lemma 5: WT(LN) data start on the sqrt(D) sphere (up to eps = 1e-5 against the features' variance)."""
    out, _, _ = quick_run
    rows = _read_csv(out / "table14_ln_radial.csv")
    assert rows
    for row in rows:
        sqrt_d = math.sqrt(float(row["D"]))
        assert float(row["sqrt_d"]) == pytest.approx(sqrt_d)
        assert float(row["step_0"]) == pytest.approx(sqrt_d, rel=2e-3)
    rfm = _read_csv(out / "table12_rfm_radial.csv")
    assert all(float(r["step_0"]) < float(r["sqrt_d"]) for r in rfm), "rFM toy features start inside the radius"


def test_mixture_exact_field_is_centripetal_with_strength_d(quick_run):
    """Eq. 12-13: the exact population field at t = 0 is u = -x, so mean |u| / mean ||x|| = 1 for every d."""
    out, _, _ = quick_run
    rows = [
        r
        for r in _read_csv(out / "fig5_mixture_cpf.csv")
        if r["field"] == "exact_population" and float(r["t"]) == 0.0 and r["where"] == "test"
    ]
    assert len(rows) >= 2
    for r in rows:
        assert float(r["ratio"]) == pytest.approx(1.0, abs=1e-6)
        assert float(r["mean_inward_u"]) == pytest.approx(float(r["mean_norm_x"]), rel=1e-6)


def test_bounds_ratios_are_consistent_and_valid(quick_run):
    """Certified supremum / stated bound: the ratio column is the quotient, and the stated bounds are upper bounds."""
    out, _, _ = quick_run
    rows = _read_csv(out / "bounds_ratio.csv")
    assert {r["lemma"] for r in rows} == {"Lemma 3", "Lemma 4"}
    for r in rows:
        ratio = float(r["ratio"])
        assert ratio == pytest.approx(float(r["certified_sup"]) / float(r["stated_bound"]), rel=1e-5)
        assert 0 < ratio <= float(r["ratio_upper"]) * (1 + 1e-9) <= 1.0


def test_layernorm_radius_is_exact_without_eps(quick_run):
    out, _, _ = quick_run
    rows = _read_csv(out / "lemma56_radius_layernorm.csv")
    assert max(abs(float(r["ratio_eps0"]) - 1) for r in rows) < 1e-12
    assert max(abs(float(r["ratio"]) / float(r["eq38"]) - 1) for r in rows) < 1e-10


# --------------------------------------------------------------------------------------------------
# Failure isolation, exit status and --only merging (fake entries, no simulation)
# --------------------------------------------------------------------------------------------------


def _ok_builder(ctx: paper_figs.Context) -> None:
    ctx.save_table({"x": __import__("numpy").arange(3.0)}, "fake_ok", "three numbers")
    ctx.number("x = 0, 1, 2")
    ctx.verdict(paper_figs.REPRODUCED)


def _failing_builder(ctx: paper_figs.Context) -> None:
    raise ValueError("deliberate failure in a test builder")


def _missing_builder(ctx: paper_figs.Context) -> None:
    raise paper_figs.NotAvailable("input not committed yet")


FAKE = (
    FigureSpec("fake_fail", "fails", "Fig. 0", "none", f"{__name__}:_failing_builder", group="a", cost=2),
    FigureSpec("fake_ok", "works", "Table 0", "none", f"{__name__}:_ok_builder", group="a", cost=1),
    FigureSpec("fake_missing", "missing input", "Fig. 99", "none", f"{__name__}:_missing_builder", group="b", cost=1),
)


def test_a_failing_figure_is_reported_and_the_others_still_run(tmp_path):
    settings = Settings(tmp_path, quick=True, jobs=1)
    reports = run_figures(FAKE, settings)
    by_name = {r.name: r for r in reports}
    assert [r.name for r in reports] == ["fake_fail", "fake_ok", "fake_missing"]
    assert by_name["fake_fail"].status == STATUS_FAILED
    assert "deliberate failure" in by_name["fake_fail"].error
    assert by_name["fake_ok"].status == STATUS_OK and (tmp_path / "fake_ok.csv").read_text() == "x\n0\n1\n2\n"
    assert by_name["fake_missing"].status == "not available"
    md, _ = write_manifest(reports, FAKE, settings, 0.1, "test")
    text = md.read_text()
    assert "failed: fake_fail" in text and "not available: fake_missing" in text
    assert "| `fake_ok.csv` | Table 0 | fake_ok |" in text


def test_cli_exit_status_is_nonzero_after_a_failure(tmp_path, monkeypatch, capsys):
    import paper_figs.__main__ as cli

    monkeypatch.setattr(paper_figs, "REGISTRY", FAKE)
    monkeypatch.setattr(cli, "REGISTRY", FAKE)
    assert cli.main(["--quick", "--out", str(tmp_path), "--jobs", "1", "--only", "fake_ok"]) == 0
    assert cli.main(["--quick", "--out", str(tmp_path), "--jobs", "1"]) == 1
    captured = capsys.readouterr()
    assert "FAILED: fake_fail" in captured.err
    # --only keeps the other entries of an earlier run in the manifest
    assert cli.main(["--quick", "--out", str(tmp_path), "--jobs", "1", "--only", "fake_ok"]) == 0
    names = [e["name"] for e in json.loads((tmp_path / "manifest.json").read_text())["entries"]]
    assert names == ["fake_fail", "fake_ok", "fake_missing"]


def _manifest_reader(ctx: paper_figs.Context) -> None:
    # runs after fake_ok in the same group: the MANIFEST on disk must already record it
    names = [e["name"] for e in json.loads((ctx.out / "manifest.json").read_text())["entries"]]
    ctx.number(f"manifest before this entry: {', '.join(names)}")
    ctx.verdict(paper_figs.REPRODUCED)


def test_manifest_is_written_after_every_entry(tmp_path, monkeypatch):
    specs = (
        FigureSpec("fake_ok", "works", "Table 0", "none", f"{__name__}:_ok_builder", group="a", cost=2),
        FigureSpec("fake_reader", "reads", "Table 1", "none", f"{__name__}:_manifest_reader", group="a", cost=1),
    )
    monkeypatch.setattr(paper_figs, "REGISTRY", specs)
    reports = paper_figs.build(None, tmp_path, quick=True, jobs=1)
    assert reports[1].numbers == ["manifest before this entry: fake_ok"]


def test_unwritable_out_is_refused_before_any_compute(tmp_path, monkeypatch, capsys):
    import paper_figs.__main__ as cli

    def no_compute(*args, **kwargs):
        raise AssertionError("nothing may run when --out is unusable")

    monkeypatch.setattr(cli, "build", no_compute)
    (tmp_path / "file").write_text("x")
    assert cli.main(["--quick", "--out", str(tmp_path / "file" / "out")]) == 2
    assert "a parent of it is a file" in capsys.readouterr().err
    with pytest.raises(NotADirectoryError, match="paper_figs output folder"):
        paper_figs.build(None, tmp_path / "file", quick=True)


def test_unknown_entry_is_a_usage_error(capsys):
    import paper_figs.__main__ as cli

    with pytest.raises(SystemExit) as err:
        cli.main(["--only", "no_such_figure"])
    assert err.value.code == 2
    assert "unknown figure 'no_such_figure'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# Vector benchmark rendering (synthetic results in benchmarks.vectors' file format)
# --------------------------------------------------------------------------------------------------


def _write_fake_results(folder: Path) -> None:
    folder.mkdir(parents=True)
    header = (
        "method,base,family,preprocessing,auroc_mean,auroc_std,auprc_mean,auprc_std,fit_s_mean,fit_s_total,"
        "fit_shared_with,score_s_mean,n_runs,radius_train,radius_test_normal,radius_test_anomaly,sqrt_d,baseline"
    )
    rows = [
        "WTFlow-LN,WTFlow-LN,flow,standardize + LayerNorm WT,0.91,0.01,0.9,0.02,3.0,9.0,,0.01,3,12.2,14.4,17.6,22.6,",
        "RFM,RFM,flow,standardize,0.85,0.02,0.8,0.02,2.0,6.0,,0.01,3,10.0,11.0,15.0,22.6,",
        "KNN (raw),KNN,pyod,raw,0.88,0.0,0.86,0.0,0.1,0.3,,0.01,3,,,,,True",
        "KNN (std),KNN,pyod,standardize,0.80,0.0,0.79,0.0,0.1,0.3,,0.01,3,,,,,False",
    ]
    (folder / "summary.csv").write_text("\n".join([header, *rows]) + "\n")
    per_category = ["method,metric,bottle,cable"]
    for method, a, b in (
        ("WTFlow-LN", 0.95, 0.87),
        ("RFM", 0.9, 0.8),
        ("KNN (raw)", 0.9, 0.86),
        ("KNN (std)", 0.8, 0.8),
    ):
        per_category += [f"{method},auroc,{a},{b}", f"{method},auprc,{a - 0.05},{b - 0.05}"]
    (folder / "per_category.csv").write_text("\n".join(per_category) + "\n")


def test_vector_benchmark_renders_committed_results(tmp_path, monkeypatch):
    from paper_figs import bench_figs

    results = tmp_path / "results"
    _write_fake_results(results / "mvtec_ad_resnet18")
    _write_fake_results(results / "mvtec_ad_resnet18-quick")
    monkeypatch.setattr(bench_figs, "RESULTS_DIR", results)
    monkeypatch.setattr(bench_figs, "_tracked", lambda paths: True)
    spec = paper_figs.spec_by_name("vectors_benchmark")
    [report] = run_figures([spec], Settings(tmp_path / "out", quick=True, jobs=1))
    assert report.status == STATUS_OK, report.error
    listed = {o.path for o in report.outputs}
    assert {"vectors_table.csv", "vectors_table.md", "vectors_heatmap.png", "vectors_heatmap.pdf"} <= listed
    table = (tmp_path / "out" / "vectors_table.md").read_text()
    assert "mvtec_ad_resnet18" in table and "-quick" not in table.splitlines()[0], "the full run is preferred"
    assert table.index("| WTFlow-LN |") < table.index("| KNN (raw) |") < table.index("| RFM |"), "sorted by AUROC"
    heat = _read_csv(tmp_path / "out" / "vectors_heatmap.csv")
    assert [r["method"] for r in heat] == ["WTFlow-LN", "KNN (raw)", "RFM", "KNN (std)"]
    assert float(heat[0]["bottle"]) == pytest.approx(0.95)
    assert report.verdict == paper_figs.REPRODUCED and not report.differs

    monkeypatch.setattr(bench_figs, "_tracked", lambda paths: False)
    [report] = run_figures([spec], Settings(tmp_path / "out2", quick=True, jobs=1))
    assert report.status == "not available" and "uncommitted results exist" in report.notes[-1]
