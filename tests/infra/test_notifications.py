"""infra/notifications.py: this project's finished jobs and transforms, and its endpoints'
state changes -> an encrypted topic (+ e-mail)."""

from __future__ import annotations

from contract.names import JOB_NAME_PREFIX
from tests.support.infra_policies import text


def _rule(synthesized, detail_type: str) -> dict:
    (rule,) = [
        r["Properties"]
        for r in synthesized.resources("AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"]["detail-type"] == [detail_type]
    ]
    return rule


def test_the_rule_matches_this_projects_finished_training_jobs(synthesized):
    rule = _rule(synthesized, "SageMaker Training Job State Change")

    assert rule["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Training Job State Change"],
        "detail": {
            "TrainingJobName": [{"prefix": JOB_NAME_PREFIX}],
            "TrainingJobStatus": ["Completed", "Failed", "Stopped"],
        },
    }
    (target,) = rule["Targets"]
    assert "NotificationsTopic" in text(target["Arn"])
    assert "<detail-TrainingJobName>" in target["InputTransformer"]["InputTemplate"]


def test_a_rule_matches_this_projects_finished_batch_transforms(synthesized):
    rule = _rule(synthesized, "SageMaker Transform Job State Change")

    assert rule["EventPattern"]["detail"] == {
        "TransformJobName": [{"prefix": JOB_NAME_PREFIX}],
        "TransformJobStatus": ["Completed", "Failed", "Stopped"],
    }
    (target,) = rule["Targets"]
    assert "NotificationsTopic" in text(target["Arn"])
    assert "<detail-TransformJobName>" in target["InputTransformer"]["InputTemplate"]


def test_a_rule_matches_every_state_change_of_this_projects_endpoints(synthesized):
    """The event spells the status IN_SERVICE, not InService: no status filter to get wrong."""
    rule = _rule(synthesized, "SageMaker Endpoint State Change")

    assert rule["EventPattern"]["detail"] == {"EndpointName": [{"prefix": JOB_NAME_PREFIX}]}
    (target,) = rule["Targets"]
    assert "NotificationsTopic" in text(target["Arn"])
    assert "<detail-EndpointStatus>" in target["InputTransformer"]["InputTemplate"]


def test_the_topic_is_encrypted_and_tls_only(synthesized):
    topic = synthesized.only("AWS::SNS::Topic")
    policy = synthesized.only("AWS::SNS::TopicPolicy")

    assert "PlatformKey" in text(topic["KmsMasterKeyId"])
    statements = policy["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    assert any(s["Principal"] == {"Service": "events.amazonaws.com"} for s in statements)


def test_eventbridge_may_use_the_key_of_the_topic_once(synthesized):
    key = synthesized.only("AWS::KMS::Key")

    (grant,) = [
        s
        for s in key["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": "events.amazonaws.com"}
    ]
    assert "kms:Decrypt" in grant["Action"]
    assert any(action.startswith("kms:GenerateDataKey") for action in grant["Action"])
    assert key["EnableKeyRotation"] is True


def test_an_email_subscription_only_when_an_address_is_set(synthesized, other_shape):
    with_email = other_shape

    assert synthesized.resources("AWS::SNS::Subscription") == {}
    subscription = with_email.only("AWS::SNS::Subscription")
    assert subscription["Protocol"] == "email"
    assert subscription["Endpoint"] == "ops@example.com"
