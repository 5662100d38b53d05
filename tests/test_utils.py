"""wtflow.utils: tables, provenance, thread limits, metrics, output folders and the figure style."""

import json

import numpy as np
import pytest
import torch

from wtflow import utils


def test_tables_select_concat_and_csv(tmp_path):
    a = utils.make_table(3, name="a", value=np.arange(3.0), flag=np.array([True, False, True]))
    b = utils.make_table(2, name="b", value=np.array([5.0, 6.0]), flag=np.array([False, False]))
    t = utils.concat_tables([a, b])
    assert utils.n_rows(t) == 5
    assert utils.select(t, name="b")["value"].tolist() == [5.0, 6.0]
    assert utils.select(t, name=["a", "b"], flag=True)["value"].tolist() == [0.0, 2.0]
    assert utils.unique(t, "name") == ["a", "b"]
    with pytest.raises(KeyError, match="no column 'missing'"):
        utils.select(t, missing=1)
    with pytest.raises(ValueError, match="cannot concatenate"):
        utils.concat_tables([a, utils.make_table(1, other=1.0)])
    with pytest.raises(ValueError, match=r"shape \(2,\), expected \(3,\)"):
        utils.make_table(3, x=np.zeros(2))
    path = utils.write_csv(t, tmp_path / "t.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "name,value,flag"
    assert lines[1] == "a,0,true" and lines[-1] == "b,6,false"
    assert utils.format_value(1 / 3) == "0.3333333"


def test_config_hash_ignores_key_order_and_sees_values():
    assert utils.config_hash({"a": 1, "b": (2, 3)}) == utils.config_hash({"b": [2, 3], "a": 1})
    assert utils.config_hash({"a": 1}) != utils.config_hash({"a": 1.5})
    x = torch.arange(6.0).reshape(3, 2)
    assert utils.tensor_digest(x) == utils.tensor_digest(x.clone())
    assert utils.tensor_digest(x) != utils.tensor_digest(x.reshape(2, 3))
    assert utils.tensor_digest(x) != utils.tensor_digest(x.double())


def test_derive_seed_is_stable_and_separates_labels():
    assert utils.derive_seed(0, "ring", 1) == utils.derive_seed(0, "ring", 1)
    assert utils.derive_seed(0, "ring", 1) != utils.derive_seed(0, "ring", 2)
    assert utils.derive_seed(0, "ring", 1) != utils.derive_seed(1, "ring", 1)
    assert 0 <= utils.derive_seed(5, "x") < 2**31


def test_jsonable_and_write_json(tmp_path):
    obj = {"a": np.float32(1.5), "b": np.arange(2), "c": (1, float("nan")), 3: np.bool_(True)}
    assert utils.jsonable(obj) == {"a": 1.5, "b": [0, 1], "c": [1, "nan"], "3": True}
    path = utils.write_json(obj, tmp_path / "x.json")
    assert json.loads(path.read_text())["c"] == [1, "nan"]


def test_thread_limits_restore_the_previous_setting():
    before = torch.get_num_threads()
    with utils.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with utils.limit_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads must be >= 1"):
        with utils.torch_threads(0):
            pass


def test_auroc_is_sklearn_behind_one_function():
    assert utils.auroc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert utils.separation_auroc([0.3, 0.1], [0.2, 0.4]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="both classes"):
        utils.auroc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN or infinite"):
        utils.auroc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="2 labels but 3 scores"):
        utils.auroc([0, 1], [0.1, 0.2, 0.3])


def test_ensure_writable_dir_creates_or_names_the_folder(tmp_path):
    assert utils.ensure_writable_dir(tmp_path / "a" / "b").is_dir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match="exists and is not a folder"):
        utils.ensure_writable_dir(tmp_path / "f")
    with pytest.raises(NotADirectoryError, match="a parent of it is a file"):
        utils.ensure_writable_dir(tmp_path / "f" / "sub", "--out")


def test_git_state_names_the_commit_or_says_unknown(tmp_path):
    assert utils.git_state(tmp_path) == "unknown (not a git checkout)"
    state = utils.git_state()
    assert state == "unknown (not a git checkout)" or len(state.split()[0]) >= 7
    assert set(utils.package_versions(("torch",))) == {"python", "wtflow", "torch"}


def test_save_figure_writes_png_and_pdf(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with utils.figure_style():
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3], color=utils.OKABE_ITO["blue"])
        utils.log_ticks(ax, [1, 3])
        paths = utils.save_figure(fig, tmp_path, "f")
    plt.close(fig)
    assert [p.name for p in paths] == ["f.png", "f.pdf"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and paths[1].read_bytes()[:4] == b"%PDF"
    assert len(utils.epoch_colors(3)) == 3
