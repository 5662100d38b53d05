"""The install is what pyproject.toml says: importable packages, extras, version, no torch pin, wheel contents."""

import importlib
import importlib.metadata
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parent.parent
DIST_NAME = "wtflow"
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
    """Every .py file inside a regular package (a chain of __init__.py) under one of PACKAGES."""
    expected = set()
    for package in PACKAGES:
        for init in (source / package).rglob("__init__.py"):
            chain = init.parent.relative_to(source).parents
            if all((source / parent / "__init__.py").exists() for parent in chain if parent != Path(".")):
                expected |= {p.relative_to(source).as_posix() for p in init.parent.glob("*.py")}
    return expected


def test_wheel_holds_the_packages_and_their_data(tmp_path):
    """Builds a wheel offline from a copy of the sources and checks discovery and package-data patterns."""
    absent = [package for package in PACKAGES if not (REPO_ROOT / package / "__init__.py").is_file()]
    assert not absent, f"pyproject.toml packages {absent}, but they have no __init__.py in {REPO_ROOT}"
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.py[cod]", "_cache", "out", "*.egg-info")
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, source / package, ignore=ignore)
    # Files that must never be packaged, so that the include patterns are really exercised.
    (source / "tests").mkdir()
    (source / "tests" / "__init__.py").write_text("")
    (source / "theory" / "notes_for_the_wheel.md").write_text("# packaged as theory/*.md\n")
    (source / "benchmarks" / "results" / "nested").mkdir(parents=True, exist_ok=True)
    (source / "benchmarks" / "results" / "nested" / "table.csv").write_text("method,auroc\n")

    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    completed = subprocess.run(
        [*command, "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    (wheel,) = (tmp_path / "dist").glob("wtflow-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())

    missing_modules = _expected_wheel_modules(source) - names
    assert not missing_modules, f"wheel lacks {sorted(missing_modules)}"
    package_data = {p.relative_to(source).as_posix() for p in (source / "theory").glob("*.md")}
    package_data |= {
        p.relative_to(source).as_posix() for p in (source / "benchmarks" / "results").rglob("*") if p.is_file()
    }
    assert package_data <= names, f"wheel lacks package data {sorted(package_data - names)}"
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level <= set(PACKAGES), f"wheel ships more than {PACKAGES}: {sorted(top_level)}"
