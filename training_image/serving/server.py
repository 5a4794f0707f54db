"""``<image> serve``: load the model in /opt/ml/model once, then serve it until SIGTERM.

SageMaker stops a serving container with SIGTERM, then SIGKILL: on SIGTERM the server stops
accepting connections, finishes the requests in flight and exits 0. A model that cannot be
loaded, or a setting that cannot be used, is logged in one line and exits 1 before the port
opens, so ``/ping`` never says ready for a server that cannot answer.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from contract.layout import Layout
from contract.serving import INVOCATION_SECONDS, SERVE_COMMAND
from serving import settings as serve_settings
from serving.model import ModelMissing, ServedModel, default_device

log = logging.getLogger("serving")


def _check_arguments(argv: list[str]) -> None:
    if argv[:1] == [SERVE_COMMAND]:
        argv = argv[1:]
    if argv:
        raise serve_settings.SettingsError(
            f"unexpected arguments {argv}; allowed: nothing after {SERVE_COMMAND!r}"
        )


def _finished(_signal: int, _frame: object) -> None:
    """SIGTERM or SIGINT once the server has shut down (uvicorn raises it again on its way
    out): the server has stopped as asked, so the exit is a clean one."""


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    import torch
    import uvicorn

    from serving.app import create_app

    try:
        _check_arguments(sys.argv[1:] if argv is None else argv)
        device = default_device()
        settings = serve_settings.from_environ(
            os.environ,
            cores=serve_settings.available_cores(),
            gpus=torch.cuda.device_count() if device == "cuda" else 0,
        )
        torch.set_num_threads(settings.torch_threads)
        folder = Layout.from_environ().model
        log.info("Loading the model in %s on %s", folder, device)
        model = ServedModel.load(folder, device)
    except (ModelMissing, serve_settings.SettingsError, OSError, ValueError) as error:
        log.error("cannot serve: %s", error)
        return 1
    description = model.describe()
    log.info(
        "Serving %s/%s (epoch %s, %d classes) on %s:%d: %d at once x %d torch threads%s",
        description["family"],
        description["backbone"],
        description["epoch"],
        len(description["classes"]),
        settings.host,
        settings.port,
        settings.slots,
        settings.torch_threads,
        ", batch transform" if settings.batch else "",
    )
    config = uvicorn.Config(
        create_app(model, settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,  # our logging.basicConfig
        timeout_keep_alive=INVOCATION_SECONDS,
        timeout_graceful_shutdown=INVOCATION_SECONDS,
    )
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _finished)
    uvicorn.Server(config).run()
    log.info("Stopped")
    return 0
