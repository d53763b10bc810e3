"""Query and mutation logic: joins policy decisions, audit and the database for the schema."""
