"""Notifications -> SNS: this project's training jobs and batch transforms ending (Completed,
Failed, Stopped), and every state change of its endpoints.

Events: "SageMaker Training Job State Change", "SageMaker Transform Job State Change" and
"SageMaker Endpoint State Change"
(https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html).
An endpoint event spells its status its own way ("IN_SERVICE", not the API's "InService"), so
that rule matches the name prefix alone.
"""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from contract.names import JOB_NAME_PREFIX

DETAIL_TYPE = "SageMaker Training Job State Change"
TRANSFORM_DETAIL_TYPE = "SageMaker Transform Job State Change"
ENDPOINT_DETAIL_TYPE = "SageMaker Endpoint State Change"
FINAL_STATUSES = ("Completed", "Failed", "Stopped")


class Notifications(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey, email: str) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="detrain jobs and endpoints",
            master_key=key,
            enforce_ssl=True,
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        job = events.EventField.from_path("$.detail.TrainingJobName")
        status = events.EventField.from_path("$.detail.TrainingJobStatus")
        self.rule = events.Rule(
            self,
            "JobFinished",
            description="detrain training jobs that completed, failed or stopped",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[DETAIL_TYPE],
                detail={
                    "TrainingJobName": events.Match.prefix(JOB_NAME_PREFIX),
                    "TrainingJobStatus": list(FINAL_STATUSES),
                },
            ),
            targets=[
                targets.SnsTopic(
                    self.topic,
                    message=events.RuleTargetInput.from_text(
                        f"Training job {job} is {status}. Details: detrain describe {job}"
                    ),
                )
            ],
        )
        transform = events.EventField.from_path("$.detail.TransformJobName")
        transform_status = events.EventField.from_path("$.detail.TransformJobStatus")
        self.transform_rule = events.Rule(
            self,
            "TransformFinished",
            description="detrain batch transforms that completed, failed or stopped",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[TRANSFORM_DETAIL_TYPE],
                detail={
                    "TransformJobName": events.Match.prefix(JOB_NAME_PREFIX),
                    "TransformJobStatus": list(FINAL_STATUSES),
                },
            ),
            targets=[
                targets.SnsTopic(
                    self.topic,
                    message=events.RuleTargetInput.from_text(
                        f"Batch transform {transform} is {transform_status}. Details: aws "
                        f"sagemaker describe-transform-job --transform-job-name {transform}"
                    ),
                )
            ],
        )
        endpoint = events.EventField.from_path("$.detail.EndpointName")
        endpoint_status = events.EventField.from_path("$.detail.EndpointStatus")
        self.endpoint_rule = events.Rule(
            self,
            "EndpointChanged",
            description="detrain endpoints changing state (in service, failed, deleting, ...)",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[ENDPOINT_DETAIL_TYPE],
                detail={"EndpointName": events.Match.prefix(JOB_NAME_PREFIX)},
            ),
            targets=[
                targets.SnsTopic(
                    self.topic,
                    message=events.RuleTargetInput.from_text(
                        f"Endpoint {endpoint} is {endpoint_status}. Details: detrain endpoints"
                    ),
                )
            ],
        )
