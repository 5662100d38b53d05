import pickle

import pytest
import torch

from wtflow.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip(tmp_path):
    payload = {"w": torch.arange(6.0).view(2, 3), "step": 3, "name": "x", "hist": [0.5, 0.25], "nested": {"a": 1}}
    path = save_checkpoint(tmp_path / "c.pt", "unit", payload)
    back = load_checkpoint(path, "unit")
    torch.testing.assert_close(back["w"], payload["w"])
    assert back["step"] == 3 and back["hist"] == [0.5, 0.25] and back["nested"] == {"a": 1}
    assert not list(tmp_path.glob("*.tmp"))


def test_truncated_file_names_the_file(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", "unit", {"w": torch.randn(100, 100)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"c\.pt.*truncated or corrupt"):
        load_checkpoint(path, "unit")


def test_tampered_tensor_is_detected(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", "unit", {"w": torch.zeros(3)})
    record = torch.load(path, weights_only=True)
    record["payload"]["w"][0] = 1.0
    torch.save(record, path)
    with pytest.raises(CheckpointError, match=r"checksum mismatch in .*c\.pt"):
        load_checkpoint(path, "unit")


class Evil:
    def __reduce__(self):
        return (print, ("executed!",))


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "wtflow", "payload": {"obj": Evil()}}, path, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(CheckpointError, match=r"refusing to load .*evil\.pt.*pickled objects"):
        load_checkpoint(path, "unit")


def test_wrong_kind_and_missing_file(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", "unit", {"w": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="expected 'model'"):
        load_checkpoint(path, "model")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nope.pt", "unit")
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a wtflow checkpoint"):
        load_checkpoint(tmp_path / "other.pt", "unit")


def test_atomic_writes_follow_the_umask(tmp_path):
    import os

    from wtflow.checkpoint import write_text_atomic

    umask = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "out" / "report.md", "hello\n")
    finally:
        os.umask(umask)
    assert path.read_text() == "hello\n"
    assert (path.stat().st_mode & 0o777) == 0o644
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize(
    "content",
    [
        bytes(range(256)) * 3,  # random-looking bytes
        b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (3,), }" + b" " * 60,  # a .npy
        pickle.dumps({"a": 1}),  # a raw pickle, not a torch.save archive
    ],
)
def test_garbage_is_reported_as_corrupt_without_unsafe_advice(tmp_path, content):
    path = tmp_path / "junk.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"junk\.pt: the file is truncated or corrupt") as info:
        load_checkpoint(path, "unit")
    message = str(info.value)
    assert "pickled" not in message and "allow_pickle" not in message and "weights_only" not in message


def test_refused_pickle_names_the_object_but_gives_no_unsafe_advice(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "wtflow", "payload": {"obj": Evil()}}, path)
    with pytest.raises(CheckpointError, match=r"pickled objects .*\(Unsupported global: GLOBAL print\)") as info:
        load_checkpoint(path, "unit")
    assert "weights_only=False" not in str(info.value) and "trust" not in str(info.value)
