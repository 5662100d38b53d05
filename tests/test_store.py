import json
import pickle

import numpy as np
import pytest
import torch

from wtflow.store import ARRAY_FILE, META_FILE, FeatureStore, StoreError


def _values(n=10, shape=(3, 4, 4), seed=0):
    return torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed))


def _finished(tmp_path, dtype="float32", n=10):
    store = FeatureStore.create(tmp_path / "s", n, (3, 4, 4), dtype=dtype, meta={"backbone": "wrn50", "layer": 3})
    x = _values(n)
    store.write(0, x[:4])
    store.write(4, x[4:].numpy())
    return store.finalize(), x


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_round_trip_and_indexing(tmp_path, dtype):
    store, x = _finished(tmp_path, dtype)
    back = FeatureStore.open(tmp_path / "s")
    expected = x.to(getattr(torch, dtype)).float()
    assert len(back) == 10 and back.event_shape == (3, 4, 4) and back.meta == {"backbone": "wrn50", "layer": 3}
    assert back.digest == store.digest and len(back.digest) == 64
    assert back[3].dtype == torch.float32 and torch.equal(back[3], expected[3])
    idx = torch.tensor([7, 2, 2, 9, 0])  # unsorted and repeated: the caller's order is kept
    assert torch.equal(back[idx], expected[idx])
    assert torch.equal(back[[1, -1]], expected[[1, -1]])
    back.verify()
    assert isinstance(back, torch.utils.data.Dataset)
    # A DataLoader worker gets a copy that reopens the memory map instead of pickling the data.
    clone = pickle.loads(pickle.dumps(back))
    assert torch.equal(clone[idx], expected[idx]) and len(pickle.dumps(back)) < 2000


def test_digest_changes_with_content(tmp_path):
    a, _ = _finished(tmp_path)
    b = FeatureStore.create(tmp_path / "b", 10, (3, 4, 4), dtype="float32")
    x = _values()
    x[5, 0, 0, 0] += 1.0
    b.write(0, x)
    assert b.finalize().digest != a.digest


def test_missing_incomplete_truncated_and_mismatched_stores_name_the_file(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        FeatureStore.open(tmp_path / "nowhere")
    unfinished = FeatureStore.create(tmp_path / "u", 4, 8)
    unfinished.write(0, torch.ones(4, 8))
    with pytest.raises(StoreError, match=r"incomplete .*meta\.json"):
        FeatureStore.open(tmp_path / "u")

    _finished(tmp_path)
    path = tmp_path / "s"
    array = (path / ARRAY_FILE).read_bytes()
    (path / ARRAY_FILE).write_bytes(array[:-100])
    with pytest.raises(StoreError, match=r"features\.npy is \d+ bytes .* truncated"):
        FeatureStore.open(path)
    (path / ARRAY_FILE).write_bytes(b"garbage" * 20)
    with pytest.raises(StoreError, match=r"features\.npy is not a readable \.npy array") as info:
        FeatureStore.open(path)
    assert "allow_pickle" not in str(info.value)
    np.save(path / ARRAY_FILE, np.zeros((10, 3, 4, 5), np.float32))
    with pytest.raises(StoreError, match=r"shape \(10, 3, 4, 5\), but .*meta\.json describes float32 \(10, 3, 4, 4\)"):
        FeatureStore.open(path)
    np.save(path / ARRAY_FILE, np.zeros((10, 3, 4, 4), np.float16))
    with pytest.raises(StoreError, match="holds a float16 array"):
        FeatureStore.open(path)
    (path / ARRAY_FILE).unlink()
    with pytest.raises(StoreError, match=r"has no array file .*features\.npy"):
        FeatureStore.open(path)
    (path / META_FILE).unlink()
    with pytest.raises(StoreError, match=r"meta\.json is missing"):
        FeatureStore.open(path)
    (path / META_FILE).write_text("{not json")
    with pytest.raises(StoreError, match=r"meta\.json is not valid JSON"):
        FeatureStore.open(path)


def test_tampered_array_fails_verify(tmp_path):
    _finished(tmp_path)
    path = tmp_path / "s" / ARRAY_FILE
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="does not match the digest"):
        FeatureStore.open(tmp_path / "s").verify()


def test_bad_writes_and_creation(tmp_path):
    store = FeatureStore.create(tmp_path / "s", 4, (2, 3), dtype="float16")
    with pytest.raises(ValueError, match=r"shape \(k, 2, 3\), got \(2, 3, 2\)"):
        store.write(0, torch.zeros(2, 3, 2))
    with pytest.raises(IndexError, match="outside the store's 4 rows"):
        store.write(3, torch.zeros(2, 2, 3))
    with pytest.raises(ValueError, match="must be finite"):
        store.write(0, torch.full((1, 2, 3), float("nan")))
    with pytest.raises(ValueError, match="beyond the largest float16"):
        store.write(0, torch.full((1, 2, 3), 1e6))
    store.write(0, torch.zeros(2, 3))  # a single sample without the batch axis
    with pytest.raises(FileExistsError, match="overwrite=True"):
        FeatureStore.create(tmp_path / "s", 4, (2, 3))
    FeatureStore.create(tmp_path / "s", 2, 5, overwrite=True).finalize()
    assert FeatureStore.open(tmp_path / "s").event_shape == (5,)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a feature store"):
        FeatureStore.create(tmp_path / "other", 2, 5, overwrite=True)
    with pytest.raises(ValueError, match="dtype must be one of"):
        FeatureStore.create(tmp_path / "d", 2, 5, dtype="float64")
    with pytest.raises(ValueError, match="count must be an integer"):
        FeatureStore.create(tmp_path / "d", 0, 5)
    with pytest.raises(ValueError, match="JSON-serialisable"):
        FeatureStore.create(tmp_path / "d", 2, 5, meta={"x": object()})
    done = FeatureStore.open(tmp_path / "s")
    with pytest.raises(RuntimeError, match="read-only"):
        done.write(0, torch.zeros(1, 5))
    meta = json.loads((tmp_path / "s" / META_FILE).read_text())
    assert meta["complete"] is True and meta["count"] == 2 and meta["dtype"] == "float16"
