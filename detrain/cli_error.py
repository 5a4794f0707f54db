"""What the user reads when a command fails: the one error the commands raise for a problem the
user can fix, and ``user_message``, which turns it and every other known failure (the input
checks' errors, AWS's) into one line with the fix. detrain/cli.py calls it once, for every
command; the command modules raise and do not convert.
"""

from __future__ import annotations

from boto3.exceptions import Boto3Error
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    NoCredentialsError,
    NoRegionError,
    SSOError,
    TokenRetrievalError,
)

from contract.names import JobNameError
from contract.tuning import TuningError


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


# AWS error codes -> what to do about them (the message AWS sent is printed before it).
_EXPIRED = "your AWS credentials have expired; renew them (`aws sso login`, or new keys)"
_INVALID = "AWS does not accept these credentials; check AWS_PROFILE or run `aws configure`"
_CODE_FIXES = {
    "ExpiredToken": _EXPIRED,
    "ExpiredTokenException": _EXPIRED,
    "RequestExpired": _EXPIRED,
    "InvalidClientTokenId": _INVALID,
    "UnrecognizedClientException": _INVALID,
    "SignatureDoesNotMatch": _INVALID,
    "InvalidSignatureException": _INVALID,
    "ThrottlingException": "AWS is throttling these calls; run the command again in a minute",
    "Throttling": "AWS is throttling these calls; run the command again in a minute",
}


def _input_errors() -> tuple[type[Exception], ...]:
    """The errors of this package's own checks: their message already says what is allowed."""
    from detrain.deployment import DeploymentError
    from detrain.ground_truth_import import ManifestError
    from detrain.rehearsal import RehearsalError
    from detrain.training_job import JobSpecError
    from detrain.upload import UploadError
    from launch_training.events import Refused

    return (
        CliError,
        Refused,
        TuningError,
        DeploymentError,
        JobNameError,
        JobSpecError,
        ManifestError,
        RehearsalError,
        UploadError,
    )


def _client_error(error: ClientError) -> str:
    details = error.response.get("Error", {})
    code = str(details.get("Code"))
    text = f"{code}: {' '.join(str(details.get('Message', '')).split())}"
    from detrain.endpoint_refusals import fix as serving_fix

    serving = serving_fix(error)
    if serving:
        return f"{text}; {serving}"
    if code.startswith("AccessDenied") or code == "UnauthorizedOperation":
        return (
            f"{text}; your AWS identity needs permission for {error.operation_name}: "
            "ask your AWS administrator, or use another --profile"
        )
    fix = _CODE_FIXES.get(code)
    return f"{text}; {fix}" if fix else text


def user_message(error: BaseException) -> str | None:
    """The one line a user reads for a failure they can act on; None for a bug (a traceback)."""
    if isinstance(error, _input_errors()):
        return str(error)
    if isinstance(error, NoCredentialsError):
        from detrain.deployment import NO_CREDENTIALS

        return NO_CREDENTIALS
    if isinstance(error, NoRegionError):
        return "no AWS region set; pass --region or set AWS_REGION"
    if isinstance(error, SSOError | TokenRetrievalError):
        return f"{error}; run `aws sso login` (with your --profile), then the command again"
    if isinstance(error, ConnectionError):
        return f"{error}; check your network, --region and AWS_ENDPOINT_URL"
    if isinstance(error, ClientError):
        return _client_error(error)
    if isinstance(error, BotoCoreError | Boto3Error):  # a failed transfer, a bad parameter, ...
        return str(error)
    return None
