"""The Table IX analogue runs end to end at a tiny size and writes its table; parameter counts are exact."""

import pytest
import torch

pytest.importorskip("timm")

from benchmarks.images.bench import COLUMNS, count_unet_parameters, format_table, main, measure_memory  # noqa: E402
from wtflow import FlowModel, count_parameters  # noqa: E402


def test_meta_parameter_count_equals_the_allocated_model():
    for nc, shape in ((8, (112, 16, 16)), (16, (24, 8, 8))):
        model = FlowModel(shape, net="unet", net_kwargs={"base_channels": nc}, wt="layernorm")
        assert count_unet_parameters(nc, shape) == count_parameters(model)


def test_bench_writes_every_figure(tmp_path):
    assert (
        main(
            ["--nc", "8", "--repeats", "1", "--warmup", "0", "--no-memory", "--resolution", "128"]
            + ["--out", str(tmp_path)]
        )
        == 0
    )
    table = (tmp_path / "bench.md").read_text()
    assert "| 8 |" in table and "K=20/K=1" in table
    header, row = (tmp_path / "bench.csv").read_text().splitlines()
    values = dict(zip(header.split(","), row.split(",")))
    assert values["map_shape"] == "112x8x8" and int(values["params"]) == count_unet_parameters(8, (112, 8, 8))
    for key in ("bare_ms", "k1_ms", "k20_ms", "k1_over_bare", "k20_over_k1", "backbone_ms", "fps_k1", "fps_k20"):
        assert float(values[key]) > 0, key
    assert len(format_table([]).splitlines()) == 2 and len(COLUMNS) == table.splitlines()[3].count("|") - 1


def test_memory_child_reports_a_peak_above_its_start():
    mem = measure_memory("train", 8, (8, 8, 8), torch.device("cpu"), 2)
    assert 0 < mem["rss_before_gib"] <= mem["rss_peak_gib"]
