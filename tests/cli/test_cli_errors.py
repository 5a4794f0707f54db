"""cli.main turns every failure a user can act on into one line with its fix, once, for every
command; anything else (a bug) keeps its traceback. AWS's refusals come from botocore's
Stubber, in the service's real error shapes."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from detrain import aws_calls, cli, job_commands


class _Session:
    """A session whose SageMaker client answers what the stub was told."""

    def __init__(self, sagemaker):
        self.sagemaker = sagemaker

    def client(self, service: str, **_):
        assert service == "sagemaker"
        return self.sagemaker


@pytest.fixture
def sagemaker(aws, monkeypatch):
    client = boto3.client("sagemaker")
    monkeypatch.setattr(aws_calls, "session", lambda args: _Session(client))
    with Stubber(client) as stub:
        yield stub


def test_access_denied_names_the_call_and_the_fix(sagemaker, capsys):
    sagemaker.add_client_error(
        "list_training_jobs",
        service_error_code="AccessDeniedException",
        service_message="User: arn:aws:iam::123456789012:user/ops is not authorized to perform: "
        "sagemaker:ListTrainingJobs",
        http_status_code=400,
    )

    assert cli.main(["list"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "detrain list: AccessDeniedException: User: arn:aws:iam::123456789012:user/ops is not "
        "authorized to perform: sagemaker:ListTrainingJobs; your AWS identity needs permission "
        "for ListTrainingJobs: ask your AWS administrator, or use another --profile"
    ]


def test_expired_credentials_say_how_to_renew_them(sagemaker, capsys):
    sagemaker.add_client_error(
        "describe_training_job",
        service_error_code="ExpiredTokenException",
        service_message="The security token included in the request is expired",
        http_status_code=400,
    )

    assert cli.main(["describe", "detrain-x"]) == 2
    assert capsys.readouterr().err == (
        "detrain describe: ExpiredTokenException: The security token included in the request "
        "is expired; your AWS credentials have expired; renew them (`aws sso login`, or new "
        "keys)\n"
    )


def test_an_unknown_job_is_awss_message_as_it_is(sagemaker, capsys):
    sagemaker.add_client_error(
        "describe_training_job",
        service_error_code="ValidationException",
        service_message="Requested resource not found.",
        http_status_code=400,
    )

    assert cli.main(["stop", "detrain-x"]) == 2
    assert capsys.readouterr().err == (
        "detrain stop: ValidationException: Requested resource not found.\n"
    )


def test_a_bug_keeps_its_traceback(monkeypatch):
    def broken(args):
        raise KeyError("TrainingJobSummaries")

    monkeypatch.setattr(job_commands, "_list", broken)

    with pytest.raises(KeyError, match="TrainingJobSummaries"):
        cli.main(["list"])


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--max", "{}"],
        ["launch", "fridge", "--keep-alive", "{}"],
        ["tune", "fridge", "--max-jobs", "{}"],
        ["tune", "fridge", "--parallel", "{}"],
        ["deploy", "job", "--instance-count", "{}"],
    ],
    ids=lambda argv: argv[-2],
)
@pytest.mark.parametrize("count", ["0", "-2", "1.5", "two", "\u00b2"])
def test_every_count_option_refuses_what_is_not_a_whole_number_of_at_least_1(argv, count, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main([part.format(count) for part in argv])

    assert stopped.value.code == 2
    assert f"{argv[-2]}: {count!r} is not a whole number of at least 1" in capsys.readouterr().err


def test_a_count_option_takes_a_whole_number():
    assert aws_calls.whole_number("3") == 3
