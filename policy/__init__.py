"""Who may do what: the Casbin model, per-request decisions, row-scope clauses, administration."""
