"""Skipping a checkov check on one resource, with the reason beside it in the template.

checkov reads skips from a resource's CloudFormation metadata,
``Metadata: {"checkov": {"skip": [{"id": "CKV_AWS_117", "comment": "why"}]}}``
(https://www.checkov.io/2.Basics/Suppressing%20and%20Skipping%20Policies.html); `make checkov`
runs it on the synthesized templates and fails on any failed check that is not skipped.
"""

from __future__ import annotations

import re

from aws_cdk import CfnResource
from constructs import IConstruct

CHECK_ID = re.compile(r"CKV2?_AWS_\d+")


def skip_check(construct: IConstruct, check_id: str, reason: str) -> None:
    """Skip ``check_id`` on ``construct``'s CloudFormation resource, saying why."""
    if not CHECK_ID.fullmatch(check_id):
        raise ValueError(f"checkov check id {check_id!r} is not of the form CKV_AWS_<n>")
    if not reason.strip():
        raise ValueError(f"skipping {check_id} on {construct.node.path} needs a reason")
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise ValueError(f"{construct.node.path} has no CloudFormation resource to skip on")
    skips = list((resource.get_metadata("checkov") or {}).get("skip", []))
    skips.append({"id": check_id, "comment": reason})
    resource.add_metadata("checkov", {"skip": skips})


# Functions that run only while CloudFormation deploys (custom-resource handlers and CDK's
# own deploy-time functions), as infra.nag.DEPLOY_TIME_FUNCTION_REASONS says for cdk-nag.
DEPLOY_TIME_FUNCTION_SKIPS = {
    "CKV_AWS_115": (
        "Runs only during a deploy; reserving concurrency would take it from the account's "
        "pool for nothing."
    ),
    "CKV_AWS_116": (
        "Invoked synchronously during a deploy (by CloudFormation or the custom-resource "
        "framework), which reports any failure to CloudFormation; a DLQ only receives "
        "asynchronous invocations."
    ),
    "CKV_AWS_117": (
        "Calls only AWS APIs and holds no data; the stack has no VPC, and one with interface "
        "endpoints would add fixed cost without protecting a data path."
    ),
}


def skip_deploy_time_function(construct: IConstruct) -> None:
    for check_id, reason in DEPLOY_TIME_FUNCTION_SKIPS.items():
        skip_check(construct, check_id, reason)
