"""Insights: aggregates computed in PostgreSQL over the caller's rows only.

`rights` holds the rules all of them follow (row scope, hidden fields, filters, audit);
`funnel`, `service`, `segments`, `attention` and `leaderboard` are one query each; `settings`
holds the thresholds; `query` is the GraphQL root type merged into the schema.
"""
