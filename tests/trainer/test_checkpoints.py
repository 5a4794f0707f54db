import pytest
import torch

from trainer import checkpoints
from trainer.engine import World
from trainer.errors import DataError
from trainer.model import DetectionModel

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


def _checkpointer(folder) -> checkpoints.Checkpointer:
    torch.manual_seed(0)
    module = torch.nn.Linear(2, 1)
    model = DetectionModel(*IDENTITY.as_dict().values(), module=module)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    return checkpoints.Checkpointer(
        folder, IDENTITY, World(), model, optimizer, scheduler, scaler, ema=None
    )


def test_the_checkpointer_resumes_what_it_saved(tmp_path):
    saved = _checkpointer(tmp_path)
    saved.save(2, 5, (1.5, 3), [{"epoch": 1}])
    resumed = _checkpointer(tmp_path)
    with torch.no_grad():
        resumed.model.module.weight.zero_()
    state = resumed.resume()
    assert (state["epoch"], state["step"], state["running_loss"]) == (2, 5, (1.5, 3))
    assert torch.equal(resumed.model.module.weight, saved.model.module.weight)


def test_learning_rate_auto_can_replace_the_checkpointers_scheduler(tmp_path):
    checkpointer = _checkpointer(tmp_path)
    replacement = torch.optim.lr_scheduler.StepLR(checkpointer.optimizer, step_size=2)
    checkpointer.scheduler = replacement  # main.train does this after the range test
    checkpointer.save(1, 0, (0.0, 0), [])
    assert checkpoints.latest(tmp_path, IDENTITY)["scheduler"]["step_size"] == 2


def test_a_data_error_mid_pass_saves_the_steps_done_first():
    def batches():
        yield from (1, 2, 3)
        raise DataError("image 4 cannot be decoded")

    saved = []
    wrapped = checkpoints.CheckpointOnDataError(batches(), saved.append)
    with pytest.raises(DataError):
        for _ in wrapped:
            pass
    assert saved == [3]
