import logging
from types import SimpleNamespace

import pytest
import torch

from contract.startup_log import parse_device
from trainer import accelerator
from trainer.errors import ConfigError

VERSION_TEXT = (
    "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  Sun May 12 19:39:15 UTC 2024\n"
    "GCC version:  gcc version 12.3.0\n"
)


def test_driver_version_is_read_from_proc(tmp_path):
    version = tmp_path / "version"
    version.write_text(VERSION_TEXT)
    assert accelerator.driver_version(version) == "535.183.01"
    assert accelerator.driver_version(tmp_path / "absent") is None


def test_cpu_without_a_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert accelerator.select(0, tmp_path / "absent") == torch.device("cpu")


def test_gpu_driver_too_old_for_the_cuda_13_override_points_back_to_the_default(
    tmp_path, monkeypatch
):
    version = tmp_path / "version"
    version.write_text(VERSION_TEXT)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    with pytest.raises(
        ConfigError,
        match=r"driver 535.183.01.*CUDA 13.0.*`cdk deploy -c detrain:cuda=12.6`.*>= 470.57.02",
    ):
        accelerator.select(0, version)


def test_gpu_driver_too_old_even_for_forward_compatibility_asks_for_a_newer_driver(
    tmp_path, monkeypatch
):
    version = tmp_path / "version"
    version.write_text(VERSION_TEXT.replace("535.183.01", "460.106.00"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "12.6")
    with pytest.raises(ConfigError) as raised:
        accelerator.select(0, version)
    message = str(raised.value)
    assert "driver 460.106.00" in message and "CUDA 12.6" in message
    assert "R470 (>= 470.57.02)" in message and "newer driver" in message
    assert "detrain:cuda" not in message  # redeploying cannot help this host


def test_the_device_line_names_no_gpu_on_the_cpu(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    caplog.set_level(logging.INFO, logger="trainer.accelerator")

    accelerator.select(0, tmp_path / "absent")

    [line] = [r.getMessage() for r in caplog.records if r.name == "trainer.accelerator"]
    assert parse_device(line) == {
        "device": "cpu",
        "gpu": "none",
        "memory": "none",
        "driver": "none",
        "cuda": torch.version.cuda or "none",
    }


def test_the_device_line_names_the_gpu_its_memory_and_the_driver(tmp_path, monkeypatch, caplog):
    version = tmp_path / "version"
    version.write_text(VERSION_TEXT)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda rank: None)
    properties = SimpleNamespace(name="NVIDIA A10G", total_memory=23_836_098_560)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: properties)
    monkeypatch.setattr(torch.version, "cuda", "12.6")
    caplog.set_level(logging.INFO, logger="trainer.accelerator")

    assert accelerator.select(1, version) == torch.device("cuda", 1)

    [line] = [r.getMessage() for r in caplog.records if r.name == "trainer.accelerator"]
    assert line == (
        "Training device: cuda:1; GPU NVIDIA A10G; memory 22.2 GiB; driver 535.183.01; "
        "CUDA build 12.6"
    )
