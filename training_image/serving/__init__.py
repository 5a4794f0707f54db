"""``<image> serve``: the SageMaker inference server for the model in /opt/ml/model.

- ``inputs``: a request body and its options become one decoded image (or a ``BadRequest``);
- ``model``: the model folder's own ``detector.py``, loaded once, and its answer as JSON;
- ``settings``: port, batch mode and concurrency, from the environment and the host;
- ``app``: the HTTP endpoints (Starlette); ``server``: the entry (uvicorn, SIGTERM).

The contract's names are in contract/serving.py; docs/serving.md describes it all.
"""
