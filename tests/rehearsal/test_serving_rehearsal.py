"""`detrain rehearse --serve`: past training to a model that answers. The job trains for real
(a tiny run: the server loads the model it writes), the endpoint is deployed in the emulator,
and InvokeEndpoint and a batch transform are answered by `train serve` on loopback."""

import io
import json
import os

import pytest

from detrain import rehearsal
from detrain.serving_rehearsal import ServingRehearsal

pytestmark = pytest.mark.slow

TINY = {"epochs": "1", "batch_size": "4"}


def test_the_rehearsal_deploys_invokes_and_transforms_with_the_jobs_model(tmp_path):
    out = io.StringIO()
    serving = ServingRehearsal(tmp_path)

    result = rehearsal.rehearse(tmp_path, images=8, hyperparameters=TINY, out=out, then=serving)

    log = out.getvalue()
    assert result.succeeded, log
    for step in range(1, 9):
        assert f"==> [{step}/8]" in log
    outcome = serving.outcome
    assert outcome.endpoint == result.job_name
    assert f"{result.job_name}: InService" in log  # detrain deploy's wait, in the emulator
    assert "model data s3://" in log and f"/{result.job_name}/output/model.tar.gz" in log
    lines = (outcome.invoke_folder / "detections.jsonl").read_text().splitlines()
    assert outcome.invoked == len(lines) == 4
    assert outcome.detections == sum(len(json.loads(line)["detections"]) for line in lines)
    sent = sorted(p.name for p in (tmp_path / "serving" / "transform-input").iterdir())
    written = sorted(p.name for p in outcome.transform_folder.iterdir())
    assert len(sent) == 8 and written == [f"{name}.out" for name in sent]
    for path in outcome.transform_folder.iterdir():
        answer = json.loads(path.read_text())
        assert set(answer) >= {"detections", "image", "model"}
    assert outcome.concurrency >= 1
    assert "MaxConcurrentTransforms" in outcome.summary()
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME" not in os.environ
