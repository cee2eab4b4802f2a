from schema.export import SCHEMA_FILE, render


def test_schema_graphql_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text() == render(), (
        "schema/schema.graphql is stale: run `.venv/bin/python -m schema.export`"
    )
