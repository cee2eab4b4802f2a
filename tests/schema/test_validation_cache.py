from __future__ import annotations

from strawberry.extensions.validation_cache import _get_validate_cache

from tests.schema.conftest import GraphQLClient


async def test_repeated_queries_hit_the_validation_cache(gql: GraphQLClient) -> None:
    query = "query Repos($first: Int) { repos(first: $first) { nodes { name } } }"
    await gql(query, first=1)
    before = _get_validate_cache(512).cache_info()
    # Other variables each time: the read cache would answer a repeat without validating.
    for first in range(2, 7):
        assert "errors" not in await gql(query, first=first)
    after = _get_validate_cache(512).cache_info()
    assert after.hits - before.hits == 5
    assert after.misses == before.misses
