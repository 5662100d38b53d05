"""The install is what pyproject.toml says: importable packages, extras, version, no torch pin, wheel contents,
licence and citation files, and `make setup`'s content stamp."""

import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parent.parent
DIST_NAME = "wtflow"
# Importable from a checkout; only wtflow goes into the wheel.
PACKAGES = ("wtflow", "theory", "toys", "benchmarks", "paper_figs")
EXTRAS = ("bench", "notebooks", "dev", "all")


@pytest.fixture(scope="module")
def pyproject() -> dict:
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def metadata():
    try:
        return importlib.metadata.metadata(DIST_NAME)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"distribution {DIST_NAME!r} is not installed; run `make setup` (pip install -e '.[all]')")


def _requirements(metadata) -> list[Requirement]:
    return [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]


def _names_for_extra(requirements: list[Requirement], extra: str, _seen: frozenset = frozenset()) -> set[str]:
    """Project names pulled in by `extra`, following self-references such as wtflow[bench,dev]."""
    names = set()
    for req in requirements:
        if req.marker is None or not req.marker.evaluate({"extra": extra}):
            continue
        if req.name == DIST_NAME:
            for sub_extra in req.extras - _seen:
                names |= _names_for_extra(requirements, sub_extra, _seen | {extra})
        else:
            names.add(req.name.lower())
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_from_this_checkout(package):
    module = importlib.import_module(package)
    assert Path(module.__file__).resolve().parent == REPO_ROOT / package


def test_installed_metadata_lists_the_extras(metadata):
    assert set(EXTRAS) <= set(metadata.get_all("Provides-Extra") or [])


def test_extra_all_covers_every_other_extra(metadata):
    requirements = _requirements(metadata)
    union_of_others = set()
    for extra in ("bench", "notebooks", "dev"):
        names = _names_for_extra(requirements, extra)
        assert names, f"extra {extra!r} pulls in no package"
        union_of_others |= names
    missing = union_of_others - _names_for_extra(requirements, "all")
    assert not missing, f"extra 'all' lacks {sorted(missing)}"


def test_torch_has_no_upper_or_exact_pin(metadata):
    core = [req for req in _requirements(metadata) if req.marker is None]
    (torch_req,) = [req for req in core if req.name == "torch"]
    operators = {spec.operator for spec in torch_req.specifier}
    assert operators <= {">=", ">"}, f"torch must carry lower bounds only, got {torch_req}"


def test_version_is_the_same_everywhere(pyproject, metadata):
    import wtflow

    assert wtflow.__version__ == pyproject["project"]["version"] == metadata["Version"]


def _expected_wheel_modules(source: Path) -> set[str]:
    """Every .py file of the ``wtflow`` package (a chain of __init__.py) in the source tree."""
    expected = set()
    for init in (source / "wtflow").rglob("__init__.py"):
        chain = init.parent.relative_to(source).parents
        if all((source / parent / "__init__.py").exists() for parent in chain if parent != Path(".")):
            expected |= {p.relative_to(source).as_posix() for p in init.parent.glob("*.py")}
    return expected


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[set[str], str]:
    """(file names, METADATA text) of a wheel built offline from a copy of the sources."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    absent = [package for package in PACKAGES if not (REPO_ROOT / package / "__init__.py").is_file()]
    assert not absent, f"packages {absent} have no __init__.py in {REPO_ROOT}"
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO_ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.py[cod]", "_cache", "out", "*.egg-info", "results")
    for package in PACKAGES:  # the research packages too, so that their exclusion is really exercised
        shutil.copytree(REPO_ROOT / package, source / package, ignore=ignore)
    (source / "tests").mkdir()
    (source / "tests" / "__init__.py").write_text("")

    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    completed = subprocess.run(
        [*command, "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    (path,) = (tmp_path / "dist").glob("wtflow-*.whl")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata_text = archive.read(metadata_name).decode()
    expected = _expected_wheel_modules(source)
    assert expected and not expected - names, f"wheel lacks {sorted(expected - names)}"
    return names, metadata_text


def test_wheel_ships_only_wtflow_with_its_type_marker_and_licence(wheel):
    names, _ = wheel
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"wtflow"}, f"the wheel installs generic top-level packages: {sorted(top_level - {'wtflow'})}"
    assert "wtflow/py.typed" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), sorted(names)


def test_wheel_metadata_carries_the_licence_and_extras_without_lightning(wheel):
    _, text = wheel
    assert "License-Expression: Apache-2.0" in text
    requirements = [
        Requirement(line.split(":", 1)[1].strip()) for line in text.splitlines() if line.startswith("Requires-Dist:")
    ]
    extras = {line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Provides-Extra:")}
    assert {"images", "anomalib", *EXTRAS} <= extras
    assert "anomalib" in _names_for_extra(requirements, "anomalib")
    assert {"scikit-image", "timm"} <= _names_for_extra(requirements, "images")
    core = {req.name.lower() for req in requirements if req.marker is None}
    heavy = {"anomalib", "lightning", "pytorch-lightning"}
    assert not core & heavy, "pip install wtflow pulls Lightning"


def test_licence_is_the_full_apache_2_text():
    text = (REPO_ROOT / "LICENSE").read_text()
    assert text.strip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text
    assert len(text.split()) > 1500


def test_citation_cites_the_toolkit_and_the_paper():
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((REPO_ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software" and cff["license"] == "Apache-2.0"
    paper = cff["preferred-citation"]
    assert "2508.05461" in str(paper["identifiers"]) and paper["authors"][0]["family-names"] == "Li"
    assert "Worst Transport" in paper["title"]


def test_make_setup_decides_by_the_content_stamp_not_by_file_dates(tmp_path):
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    venv = tmp_path / "venv"
    dry = [make, "-n", "-C", str(tmp_path), "setup", f"VENV={venv}"]
    plan = subprocess.run(dry, capture_output=True, text=True, check=True).stdout
    (stamp,) = {word for word in plan.split() if "/.wtflow-setup-" in word and "*" not in word}
    venv.mkdir()
    Path(stamp).write_text("")
    future = time.time() + 3600
    os.utime(tmp_path / "pyproject.toml", (future, future))  # a fresh clone: every file newer than the stamp
    plan = subprocess.run(dry, capture_output=True, text=True, check=True).stdout
    assert "pip" not in plan, f"make setup would reinstall into an up-to-date VENV:\n{plan}"
    (tmp_path / "pyproject.toml").write_text((tmp_path / "pyproject.toml").read_text() + "\n# changed\n")
    plan = subprocess.run(dry, capture_output=True, text=True, check=True).stdout
    assert "pip" in plan and "install" in plan, "a changed pyproject.toml must rerun setup"


def test_console_script_is_declared(pyproject):
    assert pyproject["project"]["scripts"] == {"wtflow-detect": "wtflow.cli:main"}
