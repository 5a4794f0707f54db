"""AWS's refusals of the serving calls -> the fix, in words (pure; read by cli_error once).

SageMaker answers CreateEndpoint and CreateTransformJob with ResourceLimitExceeded when a quota
is too low (new accounts start at 0 for many instance types, and serverless endpoints share an
account-wide concurrency), ValidationException for a request it never accepts (a serverless
image over its size limit, a role it cannot assume, a name already taken), and
AccessDeniedException when the caller lacks a permission. InvokeEndpoint answers ModelError
when the container itself refused the request (its message is the server's).
"""

from __future__ import annotations

import re

from botocore.exceptions import ClientError

from launch_training.refusals import raise_quota_fix

SERVING_DOCS = "docs/serving.md, 'Permissions of the CLI'"
# The IAM actions each serving call needs of the caller, named when AWS's message does not.
ACTIONS = {
    "CreateModel": "sagemaker:CreateModel and iam:PassRole on the model role (ModelRoleArn)",
    "CreateEndpointConfig": "sagemaker:CreateEndpointConfig",
    "CreateEndpoint": "sagemaker:CreateEndpoint",
    "CreateTransformJob": "sagemaker:CreateTransformJob",
    "InvokeEndpoint": "sagemaker:InvokeEndpoint",
    "DeleteEndpoint": "sagemaker:DeleteEndpoint",
    "DeleteEndpointConfig": "sagemaker:DeleteEndpointConfig",
    "DeleteModel": "sagemaker:DeleteModel",
    "ListEndpoints": "sagemaker:ListEndpoints",
    "DescribeEndpoint": "sagemaker:DescribeEndpoint",
    "DescribeEndpointConfig": "sagemaker:DescribeEndpointConfig",
    "DescribeModel": "sagemaker:DescribeModel",
    "DescribeTransformJob": "sagemaker:DescribeTransformJob",
}
_LIMIT_NAME = re.compile(r"service limit '([^']+)'")
_NOT_AUTHORIZED = re.compile(r"not authorized to perform:? ([\w:*-]+)")
_IMAGE_TOO_LARGE = re.compile(r"image size \d+ is greater than supported", re.IGNORECASE)


def fix(error: ClientError) -> str | None:
    """What to do about a refused serving call; None when it is not one of them."""
    operation = error.operation_name or ""
    if operation not in ACTIONS:
        return None
    details = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    message = " ".join(str(details.get("Message", "")).split())
    if code.startswith("AccessDenied"):
        found = _NOT_AUTHORIZED.search(message)
        action = found.group(1) if found else ACTIONS[operation]
        return (
            f"your AWS identity needs {action}: ask your AWS administrator to grant it "
            f"({SERVING_DOCS} lists every permission deploy, invoke and transform use), or use "
            "another --profile"
        )
    if code == "ResourceLimitExceeded":
        return _quota_fix(operation, message)
    if code in ("ValidationException", "ValidationError"):  # the runtime says ...Error
        return _validation_fix(operation, message)
    if operation == "InvokeEndpoint" and code == "ModelError":
        return (
            "the model server refused the request (its message is above); "
            "`detrain serve MODEL` runs the same server on this machine to try it"
        )
    if operation == "InvokeEndpoint" and code == "ModelNotReadyException":
        return "the endpoint is not ready yet; wait for InService (`detrain endpoints`)"
    return None


def _quota_fix(operation: str, message: str) -> str:
    found = _LIMIT_NAME.search(message)
    if operation == "CreateTransformJob":
        quota = found.group(1) if found else "<instance type> for transform job usage"
        return f"{raise_quota_fix(quota)}; or pass another allowed --instance-type"
    if "serverless" in message.lower():
        quota = found.group(1) if found else "serverless endpoint concurrency"
        return (
            f"{raise_quota_fix(quota)}; or pass a lower --max-concurrency, or `detrain "
            "undeploy` a serverless endpoint you no longer use"
        )
    quota = found.group(1) if found else "<instance type> for endpoint usage"
    return (
        f"{raise_quota_fix(quota)}; or deploy serverless (no --instance-type), or pass "
        "another allowed --instance-type (`detrain doctor` lists the training quotas only)"
    )


def _validation_fix(operation: str, message: str) -> str | None:
    lowered = message.lower()
    if _IMAGE_TOO_LARGE.search(message):
        return (
            "the image is over serverless inference's size limit (about 10 GB): deploy on an "
            "instance with --instance-type, or redeploy the stack (`npx cdk deploy`): it builds "
            "a CPU serving image under the limit (output ServerlessImageUri), which deploy uses "
            "for serverless endpoints"
        )
    if "assume" in lowered and "role" in lowered:
        return (
            "SageMaker cannot assume the model role: redeploy the stack (`npx cdk deploy`) so "
            "ModelRoleArn exists and trusts sagemaker.amazonaws.com"
        )
    if "already exist" in lowered or "cannot create already existing" in lowered:
        return (
            "a resource of that name exists: `detrain endpoints` lists them, `detrain undeploy "
            "NAME` deletes one, or pass --name for a new one"
        )
    if "could not find" in lowered and operation == "InvokeEndpoint":
        return "no such endpoint in this region: `detrain endpoints` lists them"
    if operation == "InvokeEndpoint" and "not found" in lowered:
        return "no such endpoint in this region: `detrain endpoints` lists them"
    if operation in ("CreateEndpointConfig", "CreateEndpoint", "CreateModel"):
        return "SageMaker never accepts this request; fix the value the message names"
    return None
