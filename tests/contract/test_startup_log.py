"""The start-up lines the trainer writes and ``detrain first-job`` reads, written and read back."""

import pytest

from contract import startup_log
from trainer.forward_compat import Decision, decide

DRIVER = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  {}  Sun May 12 19:39:15 UTC 2024\n"


@pytest.mark.parametrize(
    ("driver_text", "compat", "verdict"),
    [
        (None, None, "cpu"),
        (DRIVER.format("580.65.06"), "560.35.03", "native"),
        (DRIVER.format("470.256.02"), "560.35.03", "compat"),
        (DRIVER.format("460.106.00"), "560.35.03", "too old"),
        (DRIVER.format("535.183.01"), None, "left alone"),
        ("NVRM version: something (new)", "560.35.03", "left alone"),
    ],
)
def test_every_forward_compat_decision_reads_back(driver_text, compat, verdict):
    decision = decide(driver_text, compat)
    logged = f"2026-12-06 10:00:01,000 INFO trainer.forward_compat: {decision.describe()}"

    assert decision.verdict == verdict
    assert startup_log.parse_forward_compat(logged) == {
        "host": decision.host or "none",
        "compat": decision.compat or "none",
        "verdict": verdict,
        "reason": decision.reason,
    }


def test_the_restart_note_after_a_compat_decision_is_not_part_of_the_reason():
    decision = Decision("compat", "470.256.02", "560.35.03", "the host driver's branch is older")
    line = f"{decision.describe()}; restarting with /usr/local/cuda/compat first on LD_LIBRARY_PATH"

    assert startup_log.parse_forward_compat(line)["reason"] == "the host driver's branch is older"
    restarted = "CUDA forward compatibility on: LD_LIBRARY_PATH=/x"
    assert startup_log.parse_forward_compat(restarted) is None


def test_the_device_line_reads_back():
    line = startup_log.device_line("cuda:0", "NVIDIA H100 80GB HBM3", 79.18, "580.65.06", "12.6")

    assert line == (
        "Training device: cuda:0; GPU NVIDIA H100 80GB HBM3; memory 79.2 GiB; driver 580.65.06; "
        "CUDA build 12.6"
    )
    assert startup_log.parse_device(f"INFO trainer.accelerator: {line}") == {
        "device": "cuda:0",
        "gpu": "NVIDIA H100 80GB HBM3",
        "memory": "79.2 GiB",
        "driver": "580.65.06",
        "cuda": "12.6",
    }
    assert startup_log.parse_device("Training device: cpu") is None
