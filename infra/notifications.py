"""Notifications: this project's training jobs ending (Completed, Failed, Stopped) -> SNS.

Event: "SageMaker Training Job State Change"
(https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html).
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
FINAL_STATUSES = ("Completed", "Failed", "Stopped")


class Notifications(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey, email: str) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self, "Topic", display_name="detrain training jobs", master_key=key, enforce_ssl=True
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
