"""Generated requests (schemathesis, from openapi.yaml) to every read operation of the official
surface, valid and invalid: no server error, every status documented, every body conforming,
invalid input refused, and auth not ignored. Reads only: generated creates could cost money.

``read_check`` is parametrized by conftest.py's ``read_checks()``."""

from __future__ import annotations

from hypothesis import HealthCheck, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

# "Schema-valid input is accepted" cannot hold for every read: a made-up task id answers 404 and
# some rules tie parameters together (end_time >= start_time), which the schema cannot say.
# test_contract_errors.py checks that valid page parameters are accepted.
EXCLUDED = [positive_data_acceptance]


def test_generated_reads(kling, read_check: tuple[str, str]) -> None:
    operation_id, kind = read_check
    mode = GenerationMode.POSITIVE if kind == "valid" else GenerationMode.NEGATIVE
    # Headers through the schema's config, so invalid cases may drop or spoil Authorization.
    kling.schema.config.update(headers=kling.headers())
    operation = kling.schema.find_operation_by_id(operation_id)

    @seed(kling.settings.seed)
    @settings(
        max_examples=kling.settings.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case) -> None:  # type: ignore[no-untyped-def]
        case.call_and_validate(excluded_checks=EXCLUDED)

    check()
