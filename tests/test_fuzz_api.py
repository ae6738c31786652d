"""Schemathesis over the whole API, from its own /openapi.json, against the app served by a real
uvicorn on the real emulator: whatever the generated input, no answer is a server error.

Bounded: a few examples per operation (every operation in the schema, new ones included), no
shrinking, and `/v1/listen` waits at most a second for a job no worker runs here (its documented
504 is the one 5xx allowed).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error

from tests.fixtures_aws import AwsEnv

MAX_EXAMPLES = 6


@pytest.fixture
def aws_overrides() -> dict[str, str]:
    return {"LISTEN_MAX_WAIT_SECONDS": "1"}


def test_no_generated_request_gets_a_server_error(live_api: str, aws: AwsEnv) -> None:
    schema = schemathesis.openapi.from_url(f"{live_api}/openapi.json")
    failures: dict[str, str] = {}
    sent: list[int] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8  # every documented operation, new ones included

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def fuzz(case) -> None:
            response = case.call(timeout=30)
            sent.append(response.status_code)
            if response.status_code == 504 and case.operation.path == "/v1/listen":
                return  # documented: no worker runs here, so a job that might be audio times out
            case.validate_response(response, checks=[not_a_server_error])

        try:
            fuzz()
        except Exception as error:  # collect every operation's failure, then report them all
            failures[operation.label] = str(error)[:2000]
    assert not failures, "\n\n".join(f"{label}: {text}" for label, text in failures.items())
    assert len(sent) >= len(operations) * 2
