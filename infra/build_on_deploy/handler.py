"""Build-on-deploy: a custom resource that builds the training image when its tag is new.

Implements the on_event / is_complete contract of aws-cdk-lib's ``custom_resources.Provider``
(https://docs.aws.amazon.com/cdk/api/v2/python/aws_cdk.custom_resources/README.html).
Properties: ProjectName (CodeBuild), RepositoryName (ECR), ImageTag, ImageUri, BuildArgs
(docker build args, name -> value; ImageTag already hashes them).

- Create/Update: if the repository already holds ImageTag, nothing is built (tags are
  immutable); otherwise StartBuild with IMAGE_TAG and each build arg as environment variable
  overrides (the buildspec passes them to docker build), and is_complete polls it.
- A failed build fails the deploy with the build's status and a link to its log.
- Delete: nothing (the repository's lifecycle rule prunes old images).
A deploy with an unchanged training_image/ and build args leaves the properties unchanged, so
CloudFormation does not call this at all. Runs on the Lambda runtime's boto3 only.
"""

from __future__ import annotations

import logging
from typing import Any

import boto3

IMAGE_TAG_VARIABLE = "IMAGE_TAG"
FAILED_STATUSES = ("FAILED", "FAULT", "STOPPED", "TIMED_OUT")

logger = logging.getLogger()
logger.setLevel(logging.INFO)


class BuildFailed(RuntimeError):
    """The image build ended without success; the message names its status and log."""


def on_event(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    props = event["ResourceProperties"]
    physical_id = f"{props['RepositoryName']}:{props['ImageTag']}"
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", physical_id)}
    data = {"ImageUri": props["ImageUri"], "ImageTag": props["ImageTag"]}
    build_id = start_build_unless_present(
        project=props["ProjectName"],
        repository=props["RepositoryName"],
        tag=props["ImageTag"],
        build_args=props.get("BuildArgs") or {},
        ecr=boto3.client("ecr"),
        codebuild=boto3.client("codebuild"),
    )
    if build_id:
        data["BuildId"] = build_id
    return {"PhysicalResourceId": physical_id, "Data": data}


def is_complete(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """``{"IsComplete": bool}`` only: the framework keeps on_event's Data, and refuses any
    Data in a response that is not complete."""
    build_id = (event.get("Data") or {}).get("BuildId")
    if event["RequestType"] == "Delete" or not build_id:
        return {"IsComplete": True}
    return {"IsComplete": build_finished(build_id, codebuild=boto3.client("codebuild"))}


def start_build_unless_present(
    *, project: str, repository: str, tag: str, build_args: dict[str, str], ecr, codebuild
) -> str:
    """StartBuild for ``tag`` unless the repository already holds it; returns the build id or ''.

    The tag and the build args it was computed from go in the same StartBuild call, so the
    image pushed under ``tag`` is always the one those args build.
    """
    try:
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ecr.exceptions.ImageNotFoundException:
        pass
    else:
        logger.info("image %s:%s exists; nothing to build", repository, tag)
        return ""
    build = codebuild.start_build(
        projectName=project,
        environmentVariablesOverride=[
            {"name": IMAGE_TAG_VARIABLE, "value": tag, "type": "PLAINTEXT"},
            *(
                {"name": name, "value": value, "type": "PLAINTEXT"}
                for name, value in sorted(build_args.items())
            ),
        ],
    )["build"]
    logger.info("started build %s for %s:%s", build["id"], repository, tag)
    return build["id"]


def build_finished(build_id: str, *, codebuild) -> bool:
    """True when the build succeeded, False while it runs; raises BuildFailed otherwise."""
    builds = codebuild.batch_get_builds(ids=[build_id])["builds"]
    if not builds:
        raise BuildFailed(f"build {build_id} not found")
    build = builds[0]
    status = build["buildStatus"]
    if status == "SUCCEEDED":
        return True
    if status in FAILED_STATUSES:
        link = build.get("logs", {}).get("deepLink", "(no log link)")
        raise BuildFailed(f"training image build {build_id} ended {status}; build log: {link}")
    return False
