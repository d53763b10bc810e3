"""snapshots for the service board, segments, leaderboard and attention insights

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 12:00:00

Each insight over a large scope (the Sales subtree, or every customer) aggregated 100 000
customers and their children per request: 300-750 ms. These materialised views pre-aggregate the
same figures per department × customer owner, the facts every row scope and field mask is written
on (see policy.predicates), so a caller's predicate is applied to a few thousand rows instead.
`insight_attention_facts` keeps one narrow row per customer (scope facts, and the inputs of each
attention reason) so the list needs no join. Figures that depend on the clock are taken at
refresh time (`now()` of the refreshing transaction, recorded in `insight_refreshes`), and the
responses say so. Created empty: the server refreshes them on a schedule and answers live until
the first refresh. Each has a unique index, for `REFRESH MATERIALIZED VIEW CONCURRENTLY`.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# unresolved tickets older than this many hours fall in one age bucket (SLA hours above it are
# answered live); as insights.snapshots.AGE_CAP_HOURS
AGE_CAP_HOURS = 744
# 5 % wide buckets, bucket b > 0 holds (0.01 × 1.05^(b-1), 0.01 × 1.05^b]: as migration 0004
BUCKET = "CASE WHEN {0} <= 0.01 THEN 0 ELSE floor(ln({0} / 0.01) / ln(1.05))::int + 1 END"

LIVE_TICKETS = """
    SELECT t.*, c.department_id, c.owner_id
    FROM tickets t JOIN customers c ON c.id = t.customer_id
    WHERE t.archived_at IS NULL AND c.archived_at IS NULL"""

TICKET_GROUPS = f"""
CREATE MATERIALIZED VIEW insight_ticket_groups AS
SELECT department_id, owner_id, status, priority, coalesce(assignee_id, 0) AS assignee_id,
       CASE WHEN status IN ('OPEN', 'IN_PROGRESS') THEN least(greatest(
           floor(extract(epoch FROM now() - opened_at) / 3600), 0), {AGE_CAP_HOURS})::int
       ELSE -1 END AS age_hours,
       count(*)::bigint AS tickets,
       coalesce(sum(satisfaction), 0)::bigint AS satisfaction_sum,
       count(satisfaction)::bigint AS satisfaction_count
FROM ({LIVE_TICKETS}) t
GROUP BY 1, 2, 3, 4, 5, 6
WITH NO DATA"""  # noqa: S608  # fixed SQL assembled from constants

TICKET_RESOLUTIONS = f"""
CREATE MATERIALIZED VIEW insight_ticket_resolutions AS
SELECT department_id, owner_id, {BUCKET.format("hours")} AS bucket, count(*)::bigint AS tickets
FROM (SELECT department_id, owner_id,
             extract(epoch FROM resolved_at - opened_at) / 3600 AS hours
      FROM ({LIVE_TICKETS}) t WHERE resolved_at IS NOT NULL) r
GROUP BY 1, 2, 3
WITH NO DATA"""  # noqa: S608  # fixed SQL assembled from constants

# RFM as in insights.segments: recency from the last move to WON, frequency the won
# deals, monetary their amounts; `unpriced` is the segment with amounts hidden (monetary 1)
SEGMENT = """CASE WHEN f = 1 THEN 'NO_PURCHASE'
    WHEN r >= 4 AND f >= 3 AND {m} >= 4 THEN 'CHAMPIONS'
    WHEN r >= 3 AND f >= 3 THEN 'LOYAL'
    WHEN r >= 4 THEN 'PROMISING'
    WHEN r = 3 THEN 'NEEDS_ATTENTION'
    WHEN f >= 3 OR {m} >= 4 THEN 'AT_RISK'
    ELSE 'HIBERNATING' END"""

CUSTOMER_FACETS = f"""
CREATE MATERIALIZED VIEW insight_customer_facets AS
WITH won_at AS (
    SELECT opportunity_id, max(at) AS won_at FROM opportunity_stage_changes
    WHERE to_stage = 'WON' GROUP BY opportunity_id),
wins AS (
    SELECT o.customer_id, max(coalesce(w.won_at, o.updated_at)) AS last_won,
           count(*) AS deals, coalesce(sum(o.amount), 0) AS value
    FROM opportunities o LEFT JOIN won_at w ON w.opportunity_id = o.id
    WHERE o.archived_at IS NULL AND o.stage = 'WON'
    GROUP BY o.customer_id),
scores AS (
    SELECT c.department_id, c.owner_id, c.level, c.region, c.industry,
           CASE WHEN w.last_won IS NULL THEN 1
                WHEN extract(epoch FROM now() - w.last_won) / 86400 <= 30 THEN 5
                WHEN extract(epoch FROM now() - w.last_won) / 86400 <= 90 THEN 4
                WHEN extract(epoch FROM now() - w.last_won) / 86400 <= 180 THEN 3
                WHEN extract(epoch FROM now() - w.last_won) / 86400 <= 365 THEN 2
                ELSE 1 END AS r,
           CASE WHEN coalesce(w.deals, 0) >= 5 THEN 5 WHEN coalesce(w.deals, 0) >= 3 THEN 4
                WHEN coalesce(w.deals, 0) >= 2 THEN 3 WHEN coalesce(w.deals, 0) >= 1 THEN 2
                ELSE 1 END AS f,
           CASE WHEN coalesce(w.value, 0) >= 2000000 THEN 5
                WHEN coalesce(w.value, 0) >= 500000 THEN 4
                WHEN coalesce(w.value, 0) >= 100000 THEN 3
                WHEN coalesce(w.value, 0) >= 10000 THEN 2 ELSE 1 END AS m
    FROM customers c LEFT JOIN wins w ON w.customer_id = c.id
    WHERE c.archived_at IS NULL),
facets AS (
    SELECT department_id, owner_id, 'segment' AS facet, {SEGMENT.format(m="m")} AS value,
           {SEGMENT.format(m="1")} AS unpriced
    FROM scores
    UNION ALL SELECT department_id, owner_id, 'level', level, NULL FROM scores
    UNION ALL SELECT department_id, owner_id, 'region', region, NULL FROM scores
    UNION ALL SELECT department_id, owner_id, 'industry', industry, NULL FROM scores)
SELECT department_id, owner_id, facet, value, unpriced, count(*)::bigint AS customers
FROM facets GROUP BY 1, 2, 3, 4, 5
WITH NO DATA"""  # noqa: S608  # fixed SQL assembled from constants

# one row per (scope facts, kind, person, period) for each `InsightPeriod`, as of the refresh
LEADERBOARD = """
CREATE MATERIALIZED VIEW insight_leaderboard AS
WITH periods (days) AS (VALUES (7), (30), (90), (365))
SELECT c.department_id, c.owner_id, 'new' AS kind, c.owner_id AS who, p.days,
       count(*)::bigint AS count, NULL::numeric AS amount
FROM customers c JOIN periods p
  ON c.created_at >= now() - make_interval(days => p.days) AND c.created_at < now()
WHERE c.archived_at IS NULL
GROUP BY 1, 2, 3, 4, 5
UNION ALL
SELECT c.department_id, c.owner_id, 'won', o.owner_id, p.days, count(*), sum(o.amount)
FROM opportunity_stage_changes h
JOIN opportunities o ON o.id = h.opportunity_id
JOIN customers c ON c.id = o.customer_id
JOIN periods p ON h.at >= now() - make_interval(days => p.days) AND h.at < now()
WHERE h.to_stage = 'WON' AND o.stage = 'WON' AND o.archived_at IS NULL AND c.archived_at IS NULL
GROUP BY 1, 2, 3, 4, 5
UNION ALL
SELECT c.department_id, c.owner_id, 'notes', i.author_id, p.days, count(*), NULL
FROM interactions i
JOIN customers c ON c.id = i.customer_id
JOIN periods p ON i.occurred_at >= now() - make_interval(days => p.days) AND i.occurred_at < now()
WHERE c.archived_at IS NULL
GROUP BY 1, 2, 3, 4, 5
WITH NO DATA"""

# won amounts per window of CHURN_WINDOW_DAYS (insights.snapshots), as of the refresh
CHURN_WINDOW_DAYS = 90
ATTENTION_FACTS = f"""
CREATE MATERIALIZED VIEW insight_attention_facts AS
WITH won AS (
    SELECT o.customer_id,
           sum(o.amount) FILTER (WHERE h.at >= now() - interval '{CHURN_WINDOW_DAYS} days')
               AS recent,
           sum(o.amount) FILTER (WHERE h.at < now() - interval '{CHURN_WINDOW_DAYS} days')
               AS prior
    FROM opportunity_stage_changes h JOIN opportunities o ON o.id = h.opportunity_id
    WHERE h.to_stage = 'WON' AND h.at >= now() - interval '{2 * CHURN_WINDOW_DAYS} days'
      AND h.at < now() AND o.stage = 'WON' AND o.archived_at IS NULL
    GROUP BY o.customer_id),
plan AS (
    SELECT DISTINCT ON (customer_id) customer_id, next_follow_up_on AS due
    FROM interactions ORDER BY customer_id, occurred_at DESC, id DESC),
urgent AS (
    SELECT customer_id, count(*) AS open_urgent FROM tickets
    WHERE priority = 'URGENT' AND status IN ('OPEN', 'IN_PROGRESS') AND archived_at IS NULL
    GROUP BY customer_id)
SELECT c.id AS customer_id, c.department_id, c.owner_id, c.level,
       coalesce(c.last_interaction_at, c.created_at) AS quiet_since,
       won.recent AS won_recent, won.prior AS won_prior, plan.due AS follow_up_due,
       coalesce(urgent.open_urgent, 0)::int AS open_urgent
FROM customers c
LEFT JOIN won ON won.customer_id = c.id
LEFT JOIN plan ON plan.customer_id = c.id
LEFT JOIN urgent ON urgent.customer_id = c.id
WHERE c.archived_at IS NULL
WITH NO DATA"""  # noqa: S608  # fixed SQL assembled from constants

VIEWS = (
    (
        "insight_ticket_groups",
        TICKET_GROUPS,
        "department_id, owner_id, status, priority, assignee_id, age_hours",
    ),
    ("insight_ticket_resolutions", TICKET_RESOLUTIONS, "department_id, owner_id, bucket"),
    (
        "insight_customer_facets",
        CUSTOMER_FACETS,
        "department_id, owner_id, facet, value, unpriced",
    ),
    ("insight_leaderboard", LEADERBOARD, "department_id, owner_id, kind, who, days"),
    ("insight_attention_facts", ATTENTION_FACTS, "customer_id"),
)


def upgrade() -> None:
    for name, definition, key in VIEWS:
        op.execute(definition)
        op.execute(f"CREATE UNIQUE INDEX ux_{name} ON {name} ({key})")
    op.execute(
        "CREATE INDEX ix_insight_attention_facts_scope"
        " ON insight_attention_facts (department_id, owner_id)"
    )


def downgrade() -> None:
    for name, _, _ in reversed(VIEWS):
        op.execute(f"DROP MATERIALIZED VIEW {name}")
