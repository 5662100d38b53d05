"""The numbers the README quotes from committed results agree with those files: the vector-benchmark table
(``benchmarks/results/vectors/mvtec_ad_resnet18/summary.csv``) and the verdict counts of ``theory/CLAIMS.md``."""

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

# README row label -> method in summary.csv
VECTOR_ROWS = {
    "Mahalanobis (Ledoit-Wolf), reference": "Mahalanobis",
    "RFM-W, K = 1": "RFM-W",
    "RFM-W, K = 20": "RFM-W-K20",
    "WTFlow-BN, K = 20": "WTFlow-BN-K20",
    "WTFlow-BN, K = 1": "WTFlow-BN",
    "TCCM (published defaults)": "TCCM",
    "KNN (best PyOD baseline)": "KNN (raw)",
    "DeepSVDD": "DeepSVDD (raw)",
    "WTFlow-LN, K = 1": "WTFlow-LN",
    "RFM, K = 1": "RFM",
    "FlowMismatch": "FlowMismatch",
}
NUMBER = r"\**([0-9.]+) ± ([0-9.]+)\**"


def _summary() -> dict[str, dict[str, str]]:
    path = ROOT / "benchmarks" / "results" / "vectors" / "mvtec_ad_resnet18" / "summary.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["method"]: row for row in csv.DictReader(handle)}


@pytest.mark.parametrize("label", VECTOR_ROWS)
def test_vector_table_rows_match_the_committed_summary(label):
    match = re.search(rf"^\| {re.escape(label)} \| [^|]+ \| {NUMBER} \| {NUMBER} \|", README, flags=re.M)
    assert match, f"README has no vector-table row {label!r}"
    row = _summary()[VECTOR_ROWS[label]]
    quoted = [float(g) for g in match.groups()]
    stored = [float(row[k]) for k in ("auroc_mean", "auroc_std", "auprc_mean", "auprc_std")]
    for q, s, name in zip(quoted, stored, ("AUROC", "AUROC std", "AUPRC", "AUPRC std"), strict=True):
        assert q == pytest.approx(round(s, 3), abs=1e-9), f"{label}: README says {name} {q}, summary.csv {s:.4f}"


def test_theory_verdict_counts_match_claims_md():
    table = (ROOT / "theory" / "CLAIMS.md").read_text(encoding="utf-8").split("## Rules")[0]
    cells = [line.rsplit("|", 2)[-2].strip().strip("*") for line in table.splitlines() if line.startswith("| `")]
    verdicts = Counter(cell.split(" (")[0] for cell in cells)
    words = (
        r"of the (\d+) checked statements (\d+) hold, (\d+) hold with a correction, (\d+) are loose by a factor, "
        r"(\d+) are refuted and (\d+) (?:is|are) not checkable"
    )
    match = re.search(words.replace(" ", r"\s+"), README)
    assert match, "README does not state the verdict counts"
    total, *counts = (int(g) for g in match.groups())
    assert total == sum(verdicts.values())
    names = ("holds", "holds with correction", "loose by a factor", "refuted", "not checkable")
    assert counts == [verdicts[n] for n in names], verdicts
