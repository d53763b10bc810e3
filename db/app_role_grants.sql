-- The rights of the application role (the one the servers log in as), in one place: run as the
-- owner role after every `dossier migrate` (it is idempotent), e.g.
--     psql "$OWNER_DATABASE_URL" -f db/app_role_grants.sql
-- The role is named dossier_app here; replace the name if yours differs. docs/operations.md
-- explains the table this script implements.
--
-- * The owner role owns every table and runs migrations and `dossier audit partitions`.
-- * The application role owns nothing. It reads and writes the business tables, but the audit
--   trail (audit_events with every partition, audit_anchors, audit_digests) is append-only for
--   it: SELECT and INSERT on the parents, nothing on the partitions (rows are routed through the
--   parent, whose rights are the ones checked), no UPDATE, DELETE or TRUNCATE anywhere. The
--   append-only triggers and the hash chain stay as a second and third line.
GRANT USAGE ON SCHEMA public TO dossier_app;
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
    LOOP
        IF t.relname ~ '^audit_(events|anchors|digests)' THEN
            EXECUTE format('REVOKE ALL ON %I FROM dossier_app', t.relname);
            IF t.relname IN ('audit_events', 'audit_anchors', 'audit_digests') THEN
                EXECUTE format('GRANT SELECT, INSERT ON %I TO dossier_app', t.relname);
            END IF;
        ELSE
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO dossier_app', t.relname);
        END IF;
    END LOOP;
END
$$;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO dossier_app;
