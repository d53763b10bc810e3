"""No N+1: the statements a nested view sends do not grow with the page size."""

from __future__ import annotations

from tests.graphql.conftest import GraphQLClient

NESTED = """query($first: Int!) { customers(first: $first) { totalCount nodes {
  id name kind industry region level phone email updatedAt owner { username department { name } }
  contacts { totalCount nodes { name title phone customer { name } } }
  opportunities { nodes { name stage amount owner { username } } }
  tickets { nodes { title status priority assignee { username } } } } } }"""


async def statements_for(gql: GraphQLClient, username: str, first: int) -> tuple[int, int]:
    response = await gql.post(username, NESTED, {"first": first})
    assert response.status_code == 200
    rows = len(response.json()["data"]["customers"]["nodes"])
    return int(response.headers["x-sql-statements"]), rows


async def test_statement_count_is_flat_in_page_size(gql: GraphQLClient) -> None:
    for username in ("bob", "alice", "carol"):
        small, small_rows = await statements_for(gql, username, 2)
        large, large_rows = await statements_for(gql, username, 500)
        assert large_rows > small_rows
        assert small == large, (username, small, large)
        assert large <= 15
