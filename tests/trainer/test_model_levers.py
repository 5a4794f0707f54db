"""GPU levers that run on a CPU too: channels_last, the fused optimizer rule."""

import copy

import pytest
import torch

from contract.hyperparameters import from_values
from tests.support.synthetic import write_coco
from trainer import accelerator, batches, dataset, engine, model, tables


@pytest.mark.parametrize("family", ["efficientdet", "faster_rcnn"])
def test_channels_last_gives_the_same_losses(tmp_path, family):
    write_coco(tmp_path, 2)
    table = tables.load(tmp_path)
    backbone = {"efficientdet": "tf_lite0", "faster_rcnn": "resnet18_fpn"}[family]
    hp = from_values(
        {"model": family, "backbone": backbone, "pretrained": False, "image_size": 128}
    )
    torch.manual_seed(0)
    plain = model.create(hp, table.class_names)
    nhwc = copy.deepcopy(plain)
    nhwc.channels_last = True
    nhwc.to(torch.device("cpu"))
    conv = next(m for m in nhwc.module.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    loader = batches.loader(
        dataset.build(table, 128, train=False), family, train=True, batch_size=2
    )
    batch, _ = next(iter(loader))
    torch.manual_seed(1)  # torchvision samples proposals at random
    expected = plain.losses(batch, torch.device("cpu"))
    torch.manual_seed(1)
    got = nhwc.losses(batch, torch.device("cpu"))
    # NHWC convolutions accumulate in another order: equal to float32 rounding, not to the bit
    assert got.item() == pytest.approx(expected.item(), rel=1e-3)


def test_the_optimizer_is_fused_only_on_a_gpu():
    cpu_params = [torch.nn.Parameter(torch.zeros(2))]
    assert accelerator.optimizer_options(cpu_params) == {}
    assert accelerator.optimizer_options([]) == {}
    hp = from_values({"model": "efficientdet", "pretrained": False, "image_size": 128})
    detector = model.create(hp, ("a",))
    assert not engine.optimizer(detector, hp).defaults.get("fused")


@pytest.mark.parametrize("family", ["faster_rcnn", "retinanet"])
def test_torchvision_models_train_at_image_size_normalized_once(tmp_path, family):
    """IceVision removes torchvision's own resize (to 800 px) and normalize: the network
    gets the batch as the trainer made it, at ``image_size``, normalized once."""
    write_coco(tmp_path, 2)
    table = tables.load(tmp_path)
    hp = from_values(
        {"model": family, "backbone": "resnet18_fpn", "pretrained": False, "image_size": 128}
    )
    detector = model.create(hp, table.class_names)
    loader = batches.loader(
        dataset.build(table, 128, train=False), family, train=True, batch_size=2
    )
    batch, _ = next(iter(loader))
    images, targets = batches.to_device(batch, torch.device("cpu"), family)
    seen = detector.module.transform(images, targets)[0].tensors
    assert seen.shape == (2, 3, 128, 128)
    assert torch.equal(seen, torch.stack(images))
