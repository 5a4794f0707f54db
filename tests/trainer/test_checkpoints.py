import torch

from trainer import checkpoints

IDENTITY = checkpoints.Identity("efficientdet", "tf_lite0", 128, ("a", "b"))


def _state(value: float) -> dict:
    return {"model_state": {"w": torch.tensor([value])}, "history": []}


def test_empty_or_missing_folder_means_a_fresh_start(tmp_path):
    assert checkpoints.latest(tmp_path / "absent", IDENTITY) is None
    assert checkpoints.latest(tmp_path, IDENTITY) is None


def test_latest_wins_and_only_two_are_kept(tmp_path):
    for epoch in range(1, 5):
        checkpoints.save(tmp_path, IDENTITY, epoch=epoch, step=0, state=_state(epoch))
    checkpoints.save(tmp_path, IDENTITY, epoch=4, step=7, state=_state(4.5))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint-e0004-s000000.pt", "checkpoint-e0004-s000007.pt"]
    found = checkpoints.latest(tmp_path, IDENTITY)
    assert (found["epoch"], found["step"], found["model_state"]["w"].item()) == (4, 7, 4.5)


def test_corrupt_and_foreign_checkpoints_are_skipped(tmp_path, caplog):
    checkpoints.save(tmp_path, IDENTITY, epoch=1, step=0, state=_state(1))
    other = checkpoints.Identity("faster_rcnn", "resnet18_fpn", 128, ("a", "b"))
    checkpoints.save(tmp_path, other, epoch=2, step=0, state=_state(2))
    (tmp_path / "checkpoint-e0003-s000000.pt").write_bytes(b"truncated")
    (tmp_path / "notes.txt").write_text("ignored")
    found = checkpoints.latest(tmp_path, IDENTITY)
    assert found["epoch"] == 1
    assert "does not load" in caplog.text and "this run is" in caplog.text


def test_writes_leave_no_temporary_file(tmp_path):
    checkpoints.save(tmp_path, IDENTITY, epoch=1, step=3, state=_state(1))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-e0001-s000003.pt"]
