"""infra/image_build.py and build_trigger.py: a privileged CodeBuild project over the
training_image/ asset, and the build-on-deploy resource that starts it."""

from __future__ import annotations

import json
from pathlib import Path

from contract.names import STACK_NAME, Env
from infra.image_build import (
    BUILD_LOG_RETENTION_DAYS,
    BUILD_MINUTES,
    BUILDSPEC,
    QUEUED_MINUTES,
    REPOSITORY_URI_VARIABLE,
    WAIT_MINUTES,
    build_log_group_name,
    build_project_name,
)
from infra.image_tag import content_hash, serving_image_tag
from infra.settings import CUDA, TORCH_INDEX_URL, TORCH_INDEX_URLS

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_project_is_privileged_and_builds_from_the_s3_asset(synthesized):
    project = synthesized.only("AWS::CodeBuild::Project")

    assert project["Environment"]["PrivilegedMode"] is True
    assert project["Environment"]["Type"] == "LINUX_CONTAINER"
    assert project["Source"]["Type"] == "S3"
    assert project["Source"]["BuildSpec"] == BUILDSPEC
    assert "PlatformKey" in json.dumps(project["EncryptionKey"])
    assert project["LogsConfig"]["CloudWatchLogs"]["Status"] == "ENABLED"


def test_the_project_is_given_the_repository_uri(synthesized):
    project = synthesized.only("AWS::CodeBuild::Project")
    variables = {v["Name"]: v for v in project["Environment"]["EnvironmentVariables"]}

    assert set(variables) == {REPOSITORY_URI_VARIABLE}
    assert variables[REPOSITORY_URI_VARIABLE]["Type"] == "PLAINTEXT"
    assert "ImagesRepository" in json.dumps(variables[REPOSITORY_URI_VARIABLE]["Value"])


def test_the_project_may_push_to_the_repository(synthesized):
    policies = json.dumps(
        [
            p["Properties"]
            for name, p in synthesized.resources("AWS::IAM::Policy").items()
            if name.startswith("ImageBuildProjectRole")
        ]
    )

    for action in ("ecr:PutImage", "ecr:CompleteLayerUpload", "ecr:GetAuthorizationToken"):
        assert action in policies


def _launcher_environment(synthesized) -> dict:
    from infra.launcher import HANDLER

    (function,) = [
        f["Properties"]
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == HANDLER
    ]
    return function["Environment"]["Variables"]


def test_the_launcher_gets_the_image_uri_the_build_resource_made(synthesized):
    build_id, build = next(iter(synthesized.resources("Custom::TrainingImageBuild").items()))

    image_uri = _launcher_environment(synthesized)[Env.TRAINING_IMAGE_URI]

    assert image_uri == {"Fn::GetAtt": [build_id, "ImageUri"]}
    assert (
        build["Properties"]["ImageUri"]["Fn::Join"][1][-1] == f":{build['Properties']['ImageTag']}"
    )


def test_a_changed_training_image_changes_the_build_resource(synthesized, tmp_path):
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.settings import from_context, load_context
    from infra.stack import DetrainStack

    context_dir = tmp_path / "training_image"
    context_dir.mkdir()
    (context_dir / "Dockerfile").write_text("FROM public.ecr.aws/docker/library/python:3.11\n")
    context = load_context(REPO_ROOT / "cdk.json")
    app = cdk.App(context=context, outdir=str(tmp_path / "cdk.out"))
    stack = DetrainStack(app, "Changed", settings=from_context(context), image_context=context_dir)

    changed = Template.from_stack(stack).find_resources("Custom::TrainingImageBuild")
    (properties,) = [resource["Properties"] for resource in changed.values()]
    assert properties["ImageTag"] == content_hash(context_dir)
    assert properties["ImageTag"] != synthesized.only("Custom::TrainingImageBuild")["ImageTag"]


def test_the_deploy_waits_longer_than_the_build_may_run_within_cloudformations_hour(synthesized):
    project = synthesized.only("AWS::CodeBuild::Project")
    waiter = synthesized.only("AWS::StepFunctions::StateMachine")

    build = next(iter(synthesized.resources("Custom::TrainingImageBuild").values()))
    assert project["TimeoutInMinutes"] == BUILD_MINUTES
    assert project["QueuedTimeoutInMinutes"] == QUEUED_MINUTES
    assert QUEUED_MINUTES + BUILD_MINUTES < WAIT_MINUTES <= 60
    assert int(build["Properties"]["ServiceTimeout"]) == 3600
    definition = json.dumps(waiter["DefinitionString"])
    assert "MaxAttempts" in definition
    assert waiter["LoggingConfiguration"]["Level"] == "ALL"


def _build(synthesized) -> tuple[str, dict]:
    ((build_id, build),) = synthesized.resources("Custom::TrainingImageBuild").items()
    return build_id, build["Properties"]


def test_the_default_cuda_builds_the_dockerfiles_torch_under_the_content_hash(synthesized):
    _, build = _build(synthesized)

    assert build["BuildArgs"] == {TORCH_INDEX_URL: ""}
    assert build["ImageTag"] == content_hash(REPO_ROOT / "training_image")


def test_the_build_makes_the_cpu_serving_image_under_its_own_tag(synthesized, synth_variant):
    for shape in (synthesized, synth_variant({CUDA: "13.0"})):
        _, build = _build(shape)

        assert build["ServingImageTag"] == serving_image_tag(build["ImageTag"])
        assert build["ServingImageUri"]["Fn::Join"][1][-1] == f":{build['ServingImageTag']}"


def test_the_project_may_see_which_tags_the_repository_holds(synthesized):
    """The buildspec pushes only the tags the repository lacks (a retried build)."""
    statements = _role_statements(synthesized, "ImageBuildProjectRole")

    resources = _resources_of(statements, "ecr:DescribeImages")
    assert "ImagesRepository" in resources
    assert '"*"' not in resources


def test_cuda_13_0_builds_from_pypi_under_its_own_tag(synthesized, synth_variant):
    cuda_13 = synth_variant({CUDA: "13.0"})
    build_id, build = _build(cuda_13)

    assert build["BuildArgs"] == {TORCH_INDEX_URL: TORCH_INDEX_URLS["13.0"]}
    assert build["ImageTag"] != _build(synthesized)[1]["ImageTag"]
    assert build["ImageUri"]["Fn::Join"][1][-1] == f":{build['ImageTag']}"
    image_uri = _launcher_environment(cuda_13)[Env.TRAINING_IMAGE_URI]
    assert image_uri == {"Fn::GetAtt": [build_id, "ImageUri"]}


def test_the_build_starts_only_after_the_build_roles_policy_exists(synthesized):
    """StartBuild runs when the resource is created; CloudFormation must have made the
    project role's policy (source asset, ECR push, logs, the key) by then."""
    role = synthesized.only("AWS::CodeBuild::Project")["ServiceRole"]["Fn::GetAtt"][0]
    (policy,) = [
        name
        for name, p in synthesized.resources("AWS::IAM::Policy").items()
        if {"Ref": role} in p["Properties"]["Roles"]
    ]
    (build,) = synthesized.resources("Custom::TrainingImageBuild").values()

    assert policy in build["DependsOn"]


def test_the_build_logs_to_a_group_that_survives_a_rollback_and_a_redeploy(synthesized):
    """The build's log group is CodeBuild's default for the named project, not a resource of
    the stack: no rollback deletes it, no platform key encrypts it, and a later deploy that
    finds it there does not fail with "already exists" (image_build.py)."""
    group = build_log_group_name(STACK_NAME)
    assert group == f"/aws/codebuild/{STACK_NAME}-training-image"

    synthesized.template.has_resource_properties(
        "AWS::CodeBuild::Project",
        {
            "Name": build_project_name(STACK_NAME),
            "LogsConfig": {"CloudWatchLogs": {"Status": "ENABLED", "GroupName": group}},
        },
    )
    owned = synthesized.resources("AWS::Logs::LogGroup").values()
    assert group not in json.dumps([g["Properties"] for g in owned])
    synthesized.template.has_resource_properties(
        "Custom::TrainingImageBuild",
        {"LogGroupName": group, "LogRetentionDays": BUILD_LOG_RETENTION_DAYS},
    )
    assert BUILD_LOG_RETENTION_DAYS in (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365)


def _role_statements(synthesized, role_prefix: str) -> list[dict]:
    return [
        statement
        for name, policy in synthesized.resources("AWS::IAM::Policy").items()
        if name.startswith(role_prefix)
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _resources_of(statements: list[dict], action: str) -> str:
    return json.dumps([s["Resource"] for s in statements if action in _as_list(s["Action"])])


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_the_build_handlers_may_make_and_read_only_the_builds_log_group(synthesized):
    group = build_log_group_name(STACK_NAME)
    start = _role_statements(synthesized, "ImageBuildOnDeployStartBuildRole")
    wait = _role_statements(synthesized, "ImageBuildOnDeployWaitForBuildRole")

    for action in ("logs:CreateLogGroup", "logs:PutRetentionPolicy"):
        resources = _resources_of(start, action)
        assert f':log-group:{group}"' in resources and f":log-group:{group}:*" in resources
    assert f":log-group:{group}:*" in _resources_of(wait, "logs:GetLogEvents")
    assert _resources_of(start, "logs:GetLogEvents") == "[]"
    assert _resources_of(wait, "logs:CreateLogGroup") == "[]"
