"""What the server log says about GraphQL errors: a client's mistake is one INFO line; only
an unexpected exception is an ERROR with its traceback (and masked in the answer)."""

from __future__ import annotations

import logging

import pytest

from resolvers import repos
from tests.schema.conftest import GraphQLClient

# Where GraphQL errors are reported: our schema's client-error lines, Strawberry's logger
# for masked exceptions. The console's background lines (on PostgreSQL, the leader election
# may win during the request) and the request lines are not about the error.
_ERROR_LOGGERS = ("schema.build", "strawberry.execution")


def _logged(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, bool]]:
    return [
        (r.levelname, r.getMessage(), r.exc_info is not None)
        for r in caplog.records
        if r.name in _ERROR_LOGGERS
    ]


async def test_a_query_for_an_unknown_field_is_one_info_line(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        body = await gql("{ nosuchfield }")
    assert body["errors"][0]["message"] == "Cannot query field 'nosuchfield' on type 'Query'."
    assert _logged(caplog) == [
        ("INFO", "graphql client error: Cannot query field 'nosuchfield' on type 'Query'.", False)
    ]


async def test_a_coded_domain_error_is_one_info_line_with_its_code(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        body = await gql("{ repos(first: 500) { nodes { name } } }")
    assert body["errors"][0]["extensions"]["code"] == "INVALID"
    message = body["errors"][0]["message"]
    assert _logged(caplog) == [("INFO", f"graphql client error: INVALID: {message}", False)]


async def test_an_unexpected_exception_is_an_error_with_traceback_and_masked(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("internal detail")

    monkeypatch.setattr(repos, "list_repos", broken)
    with caplog.at_level(logging.INFO):
        body = await gql("{ repos { nodes { name } } }")
    assert body["errors"][0]["message"] == "Unexpected error."
    ((level, message, traceback),) = _logged(caplog)
    assert (level, message.splitlines()[0], traceback) == ("ERROR", "internal detail", True)
