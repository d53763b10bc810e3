"""Tamper-evident audit trail: event records, the hash chain, verification, queries, archiving.

Map of the package:
    events      AuditAction, ActorKind, AuditRecord: what callers hand in
    canonical   the documented byte encoding that the chain hashes
    masking     mask_value for sensitive values inside `changes`
    chain       append_events: writes events in the caller's transaction, chained
    partitions  monthly partitions of audit_events, created on demand
    verify      verify_chain: recomputes the chain, names the first bad entry
    indexer     the resource-id index, filled behind the appenders up to a watermark
    queries     AuditFilter, list_events, count_events, stream_events (GraphQL and exports)
    archive     archive_before: verified JSON Lines file, then detach and drop old months
"""
