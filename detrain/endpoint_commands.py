"""Commands that host a trained model: deploy, endpoints, undeploy.

``deploy JOB`` (a training job, or a tuning job's best trial) creates the SageMaker Model (the
job's model.tar.gz, served by the deployed
image, run as the stack's model role), the EndpointConfig and the Endpoint, then waits for
InService. Serverless by default: nothing costs while idle. ``--instance-type`` gives a
real-time endpoint from the deployment's allow-list, after its hourly price is shown and
confirmed. Requests and names: detrain/endpoint_requests.py; prices:
detrain/endpoint_prices.py; AWS's refusals: detrain/endpoint_refusals.py (via cli_error).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from contract.names import JOB_NAME_PREFIX, TAG_ENDPOINT, Output
from detrain import aws_calls, deployment, endpoint_prices, tuning_results
from detrain import endpoint_requests as requests
from detrain.cli_error import CliError

ENDPOINT_READY = "InService"
ENDPOINT_FAILED = ("Failed", "OutOfService")


# ---- what the deployment provides ------------------------------------------------------


def serving_outputs(aws, stack: str) -> dict[str, str]:
    """The stack outputs serving needs (bucket, images, model role, allow-list)."""
    outputs = deployment.stack_outputs(aws, stack, flags="(none: deploy the stack first)")
    for key in (Output.BUCKET_NAME, Output.IMAGE_URI, Output.MODEL_ROLE_ARN):
        if not outputs.get(key):
            raise CliError(
                f"stack {stack!r} has no output {key}: it predates serving; redeploy it "
                "(`npx cdk deploy`)"
            )
    return outputs


def allowed_endpoint_types(outputs: dict[str, str]) -> tuple[str, ...]:
    raw = outputs.get(Output.ENDPOINT_INSTANCE_TYPES, "")
    return tuple(t.strip() for t in raw.split(",") if t.strip())


def completed_model(sagemaker, job: str) -> tuple[str, str]:
    """The training job (a tuning job's best trial) and the S3 URI of its model.tar.gz, or a
    CliError saying why there is none."""
    described = tuning_results.described_job(sagemaker, job)
    job, uri = (
        described["TrainingJobName"],
        described.get("ModelArtifacts", {}).get("S3ModelArtifacts"),
    )
    if described["TrainingJobStatus"] != "Completed" or not uri:
        raise CliError(
            f"job {job!r} is {described['TrainingJobStatus']}; only a Completed job's model "
            "can be served"
        )
    return job, uri


def ensure_model(sagemaker, request: dict[str, Any]) -> None:
    """CreateModel, or reuse the model of that name when its spec is the same."""
    _ensure(
        "model",
        request["ModelName"],
        lambda: sagemaker.describe_model(ModelName=request["ModelName"]),
        lambda: sagemaker.create_model(**request),
        requests.model_spec(request),
    )


def _ensure(kind: str, name: str, describe, create, spec: dict[str, Any]) -> None:
    try:
        found = describe()
    except ClientError as error:
        if not is_not_found(error):
            raise
        create()
        return
    changed = requests.differences(spec, found)
    if changed:
        raise requests.SpecConflict(
            f"{kind} {name!r} exists with another spec ({'; '.join(changed)}); `detrain "
            f"undeploy {name}` deletes what deploy made, or pass --name for a new one"
        )
    print(f"{kind} {name} exists with this spec: reused")


def is_not_found(error: ClientError) -> bool:
    """SageMaker's answer to Describe* of a missing resource: a ValidationException saying
    "Could not find ..." (or "... not found")."""
    details = error.response.get("Error", {})
    message = str(details.get("Message", "")).lower()
    return details.get("Code") == "ValidationException" and (
        "could not find" in message or "not found" in message
    )


# ---- deploy ------------------------------------------------------------------------------


def _deploy(args: argparse.Namespace) -> int:
    aws = aws_calls.session(args)
    outputs = serving_outputs(aws, args.stack)
    serving = requests.check_serving(
        requests.Serving(
            instance_type=args.instance_type,
            instance_count=args.instance_count,
            memory_mb=args.memory,
            max_concurrency=args.max_concurrency,
        ),
        allowed_endpoint_types(outputs),
    )
    sagemaker = aws.client("sagemaker")
    job, model_data = completed_model(sagemaker, args.job)
    name = requests.resource_name(args.name or job)
    image = outputs[Output.IMAGE_URI]
    if serving.serverless and outputs.get(Output.SERVERLESS_IMAGE_URI):
        image = outputs[Output.SERVERLESS_IMAGE_URI]
    cost = (
        endpoint_prices.serverless_cost(serving.memory_mb)
        if serving.serverless
        else endpoint_prices.real_time_cost(serving.instance_type, serving.instance_count)
    )
    print(f"endpoint {name}: {cost}")
    if not serving.serverless:
        confirm(args.yes, f"deploy {name} on {serving.instance_type}?")
    tags = requests.tags(job, name)
    deploy(
        sagemaker,
        requests.model_request(
            name,
            image=image,
            model_data_url=model_data,
            role_arn=outputs[Output.MODEL_ROLE_ARN],
            tags=tags,
        ),
        requests.endpoint_config_request(name, model_name=name, serving=serving, tags=tags),
        requests.endpoint_request(name, config_name=name, tags=tags),
    )
    if args.no_wait:
        print(f"endpoint {name} is being created: `detrain endpoints` shows its status")
        return 0
    wait_in_service(sagemaker, name, poll=args.poll)
    print(f"endpoint {name} is InService: detrain invoke {name} IMAGES... --out FOLDER")
    return 0


def confirm(yes: bool, question: str) -> None:
    """Go on with --yes or a typed yes; anything else stops (nothing is created)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"{question} needs a yes: pass --yes (this costs money while it runs)")
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise CliError("not deployed: nothing was created")


def deploy(sagemaker, model: dict, config: dict, endpoint: dict) -> None:
    """Model, EndpointConfig, Endpoint: each created, or reused when it exists as specified."""
    ensure_model(sagemaker, model)
    _ensure(
        "endpoint configuration",
        config["EndpointConfigName"],
        lambda: sagemaker.describe_endpoint_config(EndpointConfigName=config["EndpointConfigName"]),
        lambda: sagemaker.create_endpoint_config(**config),
        requests.endpoint_config_spec(config),
    )
    _ensure(
        "endpoint",
        endpoint["EndpointName"],
        lambda: sagemaker.describe_endpoint(EndpointName=endpoint["EndpointName"]),
        lambda: sagemaker.create_endpoint(**endpoint),
        {"EndpointConfigName": endpoint["EndpointConfigName"]},
    )


def wait_in_service(sagemaker, name: str, *, poll: float) -> dict:
    """Poll until InService; a CliError with SageMaker's reason when it fails."""
    last = None
    while True:
        described = sagemaker.describe_endpoint(EndpointName=name)
        status = described["EndpointStatus"]
        if status != last:
            print(f"{datetime.now(UTC):%H:%M:%S} {name}: {status}", flush=True)
            last = status
        if status == ENDPOINT_READY:
            return described
        if status in ENDPOINT_FAILED:
            reason = described.get("FailureReason", "no reason given")
            raise CliError(
                f"endpoint {name} is {status}: {reason}; its log is /aws/sagemaker/Endpoints/"
                f"{name} in CloudWatch; `detrain undeploy {name}` deletes it"
            )
        time.sleep(poll)


# ---- endpoints, undeploy -----------------------------------------------------------------


def _age(created: Any, now: datetime) -> str:
    if not isinstance(created, datetime):
        return "-"
    minutes = int((now - created).total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // (24 * 60)} days"


def endpoint_rows(sagemaker, *, everything: bool) -> list[tuple[str, str, str, str]]:
    """(name, status, age, cost class) of each endpoint, newest first."""
    params: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    if not everything:
        params["NameContains"] = JOB_NAME_PREFIX
    rows, now = [], datetime.now(UTC)
    for page in sagemaker.get_paginator("list_endpoints").paginate(**params):
        for summary in page["Endpoints"]:
            name = summary["EndpointName"]
            described = sagemaker.describe_endpoint(EndpointName=name)
            config = sagemaker.describe_endpoint_config(
                EndpointConfigName=described["EndpointConfigName"]
            )
            cost = ", ".join(
                endpoint_prices.cost_class(variant) for variant in config["ProductionVariants"]
            )
            rows.append((name, summary["EndpointStatus"], _age(summary["CreationTime"], now), cost))
    return rows


def _endpoints(args: argparse.Namespace) -> int:
    rows = endpoint_rows(aws_calls.session(args).client("sagemaker"), everything=args.all)
    if not rows:
        print("no endpoints")
        return 0
    header = ("ENDPOINT", "STATUS", "AGE", "COST")
    widths = [max(len(row[i]) for row in (*rows, header)) for i in range(3)]
    for row in (header, *rows):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), end=""
        )
        print(f"  {row[3]}")
    return 0


def _tagged_for(sagemaker, arn: str, endpoint: str) -> bool:
    found = sagemaker.list_tags(ResourceArn=arn).get("Tags", [])
    return {"Key": TAG_ENDPOINT, "Value": endpoint} in found


def _undeploy(args: argparse.Namespace) -> int:
    sagemaker = aws_calls.session(args).client("sagemaker")
    name = args.endpoint
    described = sagemaker.describe_endpoint(EndpointName=name)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    sagemaker.delete_endpoint(EndpointName=name)
    print(f"endpoint {name}: deleting (billing stops)")
    if _tagged_for(sagemaker, config["EndpointConfigArn"], name):
        sagemaker.delete_endpoint_config(EndpointConfigName=config["EndpointConfigName"])
        print(f"endpoint configuration {config['EndpointConfigName']}: deleted")
    for variant in config["ProductionVariants"]:
        model = sagemaker.describe_model(ModelName=variant["ModelName"])
        if _tagged_for(sagemaker, model["ModelArn"], name):
            sagemaker.delete_model(ModelName=variant["ModelName"])
            print(f"model {variant['ModelName']}: deleted")
    return 0


# ---- argument parsing -------------------------------------------------------------------


def register(subcommands: argparse._SubParsersAction) -> None:
    aws = aws_calls.aws_options()

    cmd = subcommands.add_parser(
        "deploy",
        parents=[aws],
        help="host a completed job's model on a SageMaker endpoint (serverless by default)",
        description="Create the Model, EndpointConfig and Endpoint for JOB's model and wait for "
        "InService. Serverless unless --instance-type: nothing costs while idle. A real-time "
        "endpoint costs per hour until `detrain undeploy`; its price is shown first.",
    )
    cmd.add_argument("job", help="a Completed training job, or a tuning job (its best trial)")
    cmd.add_argument("--name", help=f"endpoint name (default: the job's; {JOB_NAME_PREFIX}...)")
    cmd.add_argument("--instance-type", help="a real-time endpoint on this type (allow-listed)")
    cmd.add_argument(
        "--instance-count", type=aws_calls.whole_number, default=1, help="instances (default 1)"
    )
    cmd.add_argument(
        "--memory",
        type=int,
        default=requests.DEFAULT_SERVERLESS_MEMORY_MB,
        help=f"serverless memory in MB: 1024-6144 in steps of 1024 "
        f"(default {requests.DEFAULT_SERVERLESS_MEMORY_MB})",
    )
    cmd.add_argument(
        "--max-concurrency",
        type=int,
        default=requests.DEFAULT_MAX_CONCURRENCY,
        help=f"serverless concurrent requests, 1-200 (default {requests.DEFAULT_MAX_CONCURRENCY})",
    )
    cmd.add_argument("--yes", action="store_true", help="do not ask before a billed endpoint")
    cmd.add_argument("--no-wait", action="store_true", help="return once creation has started")
    cmd.add_argument("--poll", type=float, default=15, help="seconds between polls (default 15)")
    cmd.set_defaults(func=_deploy)

    cmd = subcommands.add_parser(
        "endpoints", parents=[aws], help="list endpoints with their age and cost class"
    )
    cmd.add_argument("--all", action="store_true", help=f"not only {JOB_NAME_PREFIX}* endpoints")
    cmd.set_defaults(func=_endpoints)

    cmd = subcommands.add_parser(
        "undeploy",
        parents=[aws],
        help="delete an endpoint, and the configuration and model deploy made for it",
    )
    cmd.add_argument("endpoint", help="endpoint name (`detrain endpoints` lists them)")
    cmd.set_defaults(func=_undeploy)
