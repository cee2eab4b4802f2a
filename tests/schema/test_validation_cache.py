from __future__ import annotations

from strawberry.extensions.validation_cache import _get_validate_cache

from tests.schema.conftest import GraphQLClient


async def test_repeated_queries_hit_the_validation_cache(gql: GraphQLClient) -> None:
    query = "{ repos(first: 3) { nodes { name } } }"
    await gql(query)
    before = _get_validate_cache(512).cache_info()
    for _ in range(5):
        assert "errors" not in await gql(query)
    after = _get_validate_cache(512).cache_info()
    assert after.hits - before.hits == 5
    assert after.misses == before.misses
