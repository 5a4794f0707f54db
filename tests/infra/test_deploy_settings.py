"""infra.settings: the cdk.json context -> Settings, its errors, and the launcher's environment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from contract import launcher_settings
from contract.launcher_settings import LauncherSettings
from contract.names import SPOT_MODES, Env
from infra import settings as s

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def context() -> dict:
    return s.load_context(REPO_ROOT / "cdk.json")


def test_cdk_json_holds_valid_settings_for_every_key(context):
    settings = s.from_context(context)

    assert set(s.setting_keys()) <= set(context)
    assert settings.default_instance_type in settings.instance_types
    assert settings.spot in SPOT_MODES
    assert settings.retain


def test_command_line_strings_are_accepted(context):
    overrides = {
        s.INSTANCE_TYPES: "ml.g5.xlarge, ml.g5.2xlarge",
        s.DEFAULT_INSTANCE_TYPE: "ml.g5.2xlarge",
        s.MAX_INSTANCE_COUNT: "4",
        s.MAX_RUNTIME_HOURS: "48",
        s.SPOT: "off",
        s.NOTIFICATION_EMAIL: "ops@example.com",
        s.REMOVAL_POLICY: "destroy",
        s.IMAGES_KEPT: "3",
        s.LAUNCHER_CONCURRENCY: "5",
        s.CUDA: "12.6",
        s.MAX_TUNING_JOBS: "20",
        s.MAX_PARALLEL_TUNING_JOBS: "4",
        s.MAX_KEEP_ALIVE_MINUTES: "0",
    }

    settings = s.from_context({**context, **overrides})
    assert (settings.max_tuning_jobs, settings.max_parallel_tuning_jobs) == (20, 4)
    assert settings.max_keep_alive_minutes == 0

    assert settings.instance_types == ("ml.g5.xlarge", "ml.g5.2xlarge")
    assert settings.max_instance_count == 4
    assert settings.max_runtime_hours == 48
    assert settings.spot == "off"
    assert settings.notification_email == "ops@example.com"
    assert not settings.retain
    assert (settings.images_kept, settings.launcher_concurrency) == (3, 5)
    assert settings.cuda == "12.6"


def test_a_json_list_on_the_command_line_is_accepted(context):
    settings = s.from_context(
        {**context, s.INSTANCE_TYPES: '["ml.g6.xlarge"]', s.DEFAULT_INSTANCE_TYPE: "ml.g6.xlarge"}
    )

    assert settings.instance_types == ("ml.g6.xlarge",)


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        (s.SPOT, "sometimes", "required, preferred, off"),
        (s.REMOVAL_POLICY, "snapshot", "retain, destroy"),
        (s.MAX_INSTANCE_COUNT, "0", "from 1 to 100"),
        (s.MAX_INSTANCE_COUNT, True, "from 1 to 100"),
        (s.MAX_RUNTIME_HOURS, "673", "from 1 to 672"),
        (s.MAX_RUNTIME_HOURS, "two", "from 1 to 672"),
        (s.MAX_KEEP_ALIVE_MINUTES, "61", "from 0 to 60"),
        (s.MAX_PARALLEL_TUNING_JOBS, "0", "from 1 to 100"),
        (s.IMAGES_KEPT, -1, "from 1 to 1000"),
        (s.LAUNCHER_CONCURRENCY, "0", "an integer from 1 to 100, or 'off'"),
        (s.LAUNCHER_CONCURRENCY, "none", "an integer from 1 to 100, or 'off'"),
        (s.DEFAULT_INSTANCE_TYPE, "ml.p5.48xlarge", "ml.g5.xlarge"),
        (s.INSTANCE_TYPES, "g5.xlarge", "ml.g5.xlarge"),
        (s.INSTANCE_TYPES, [], "at least one"),
        # The shell ate the quotes of -c 'detrain:instanceTypes=["ml.g5.xlarge"]'.
        (s.INSTANCE_TYPES, "[ml.g5.xlarge]", "comma-separated string such as ml.g5.xlarge"),
        (s.INSTANCE_TYPES, 5, "a JSON list such as"),
        (s.NOTIFICATION_EMAIL, "not-an-address", "ops@example.com"),
        (s.CUDA, "11.8", "13.0, 12.6"),
        (s.CUDA, "cu126", "13.0, 12.6"),
        (s.CUDA, 12, "13.0, 12.6"),
    ],
)
def test_a_bad_setting_names_the_key_the_value_and_what_is_allowed(context, key, value, allowed):
    with pytest.raises(s.SettingsError) as error:
        s.from_context({**context, key: value})

    message = str(error.value)
    assert key in message
    assert allowed in message
    if isinstance(value, str) and value:
        assert value in message


def test_a_missing_setting_is_named(context):
    del context[s.REMOVAL_POLICY]

    with pytest.raises(s.SettingsError, match=f"missing setting {s.REMOVAL_POLICY}"):
        s.from_context(context)


def test_the_launcher_defaults_are_the_contracts_and_cdk_json_spells_them_out(context):
    """One default per launcher choice: a key left out gets the contract's value, the one the
    function falls back to; cdk.json (and the README's table) show the same value."""
    defaults = {
        s.MAX_INSTANCE_COUNT: launcher_settings.DEFAULT_MAX_INSTANCE_COUNT,
        s.MAX_RUNTIME_HOURS: launcher_settings.DEFAULT_MAX_RUNTIME_HOURS,
        s.SPOT: launcher_settings.DEFAULT_SPOT,
        s.MAX_TUNING_JOBS: launcher_settings.DEFAULT_MAX_TUNING_JOBS,
        s.MAX_PARALLEL_TUNING_JOBS: launcher_settings.DEFAULT_MAX_PARALLEL_TUNING_JOBS,
        s.MAX_KEEP_ALIVE_MINUTES: launcher_settings.DEFAULT_MAX_KEEP_ALIVE_MINUTES,
    }
    left_out = s.from_context({k: v for k, v in context.items() if k not in defaults})
    readme = (REPO_ROOT / "README.md").read_text()

    assert (
        left_out.max_instance_count,
        left_out.max_runtime_hours,
        left_out.spot,
        left_out.max_tuning_jobs,
        left_out.max_parallel_tuning_jobs,
        left_out.max_keep_alive_minutes,
    ) == tuple(defaults.values())
    for key, value in defaults.items():
        assert context[key] == value, f"cdk.json's {key} is not the contract's default"
        assert f"| `{key}` | `{value}` |" in readme, f"README's default of {key}"


def test_the_cuda_flavour_picks_where_pip_finds_torch(context):
    default = s.from_context(context)
    cuda_13 = s.from_context({**context, s.CUDA: "13.0"})

    assert context[s.CUDA] == default.cuda == "12.6"
    assert default.image_build_args == {s.TORCH_INDEX_URL: ""}  # the Dockerfile's cu126 default
    assert cuda_13.image_build_args == {s.TORCH_INDEX_URL: "https://pypi.org/simple"}


def test_a_cdk_json_without_the_cuda_key_keeps_the_dockerfile_default(context):
    del context[s.CUDA]

    assert s.from_context(context).image_build_args == {s.TORCH_INDEX_URL: ""}


def test_a_bare_number_in_cdk_json_names_the_same_flavour(context):
    assert s.from_context({**context, s.CUDA: 12.6}).cuda == "12.6"
    assert s.from_context({**context, s.CUDA: 13.0}).cuda == "13.0"


def test_every_flavour_index_is_the_one_the_dockerfile_documents():
    dockerfile = (REPO_ROOT / "training_image" / "Dockerfile").read_text()

    assert f"ARG {s.TORCH_INDEX_URL}=https://download.pytorch.org/whl/cu126\n" in dockerfile
    for url in filter(None, s.TORCH_INDEX_URLS.values()):
        assert url in dockerfile


def test_no_launcher_concurrency_is_reserved_unless_asked_for(context):
    missing = {key: value for key, value in context.items() if key != s.LAUNCHER_CONCURRENCY}

    assert context[s.LAUNCHER_CONCURRENCY] == "off"
    assert s.from_context(context).launcher_concurrency is None
    assert s.from_context(missing).launcher_concurrency is None
    assert s.from_context({**context, s.LAUNCHER_CONCURRENCY: "OFF"}).launcher_concurrency is None
    assert s.from_context({**context, s.LAUNCHER_CONCURRENCY: 3}).launcher_concurrency == 3


@pytest.mark.parametrize(
    ("types", "default", "key"),
    [
        ("ml.g5.xlarge,ml.g5.3xlarge", "ml.g5.xlarge", s.INSTANCE_TYPES),
        ("ml.g5.xlarge", "ml.g5.3xlarge", s.DEFAULT_INSTANCE_TYPE),
    ],
)
def test_an_instance_type_sagemaker_does_not_train_on_is_refused_naming_close_ones(
    context, types, default, key
):
    # The old pattern (ml.<family>.<n>xlarge) accepted it; SageMaker has no ml.g5.3xlarge.
    overrides = {s.INSTANCE_TYPES: types, s.DEFAULT_INSTANCE_TYPE: default}

    with pytest.raises(s.SettingsError) as error:
        s.from_context({**context, **overrides})

    message = str(error.value)
    assert f"{key} holds 'ml.g5.3xlarge', not a SageMaker training instance type" in message
    assert re.search(r"close matches: .*ml\.g5\.2xlarge", message)
    assert "ml.g5.4xlarge" in message


def test_the_known_types_are_sagemakers_own_training_instance_types():
    known = s.sagemaker_training_instance_types()

    assert {"ml.g5.xlarge", "ml.g6.12xlarge", "ml.p4d.24xlarge", "ml.p5.48xlarge"} <= known
    assert "ml.g5.3xlarge" not in known
    assert all(name.startswith("ml.") for name in known)


def test_duplicate_instance_types_are_refused(context):
    with pytest.raises(s.SettingsError, match=re.escape("ml.g5.xlarge more than once")):
        s.from_context({**context, s.INSTANCE_TYPES: "ml.g5.xlarge,ml.g5.xlarge"})


def test_an_unreadable_cdk_json_is_named(tmp_path):
    path = tmp_path / "cdk.json"
    path.write_text("{not json")

    with pytest.raises(s.SettingsError, match=str(path)):
        s.load_context(path)


def test_the_launcher_reads_back_the_environment_the_stack_sets(context):
    settings = s.from_context({**context, s.SPOT: "required", s.MAX_INSTANCE_COUNT: 3})
    environment = s.launcher_environment(
        settings,
        bucket_name="detrain-data-123456789012-us-east-1",
        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/detrain-training:0123abcd",
        training_role_arn="arn:aws:iam::123456789012:role/detrain-training",
        output_kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        notifications_topic_arn="arn:aws:sns:us-east-1:123456789012:detrain-jobs",
    )

    assert set(environment) == {v for k, v in vars(Env).items() if not k.startswith("_")}
    parsed = LauncherSettings.from_environ(environment)
    assert parsed.allowed_instance_types == settings.instance_types
    assert parsed.default_instance_type == settings.default_instance_type
    assert parsed.max_instance_count == 3
    assert parsed.max_runtime_hours == settings.max_runtime_hours
    assert parsed.spot == "required"
    assert parsed.image.tag == "0123abcd"
