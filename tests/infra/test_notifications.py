"""infra/notifications.py: this project's finished jobs -> an encrypted topic (+ e-mail)."""

from __future__ import annotations

from infra_policies import text

from contract.names import JOB_NAME_PREFIX


def test_the_rule_matches_this_projects_finished_training_jobs(synthesized):
    rule = synthesized.only("AWS::Events::Rule")

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
