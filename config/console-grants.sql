-- The console's PostgreSQL role: what `traceon-edge console` may do, and above all what it may not.
--
-- Two roles: the OWNER (say traceon, who runs `traceon-edge collect` and creates every table: run
-- `traceon-edge users list --db postgresql://traceon@…` once so that the console's tables exist), and
-- traceon_console, which the web app connects as. Run this file as the owner, in the tracer's database:
--     psql 'postgresql://traceon@db/traceon' -f config/console-grants.sql
-- Run it again after an upgrade that adds tables. The audit log is append-only for the console: it may
-- SELECT and INSERT rows of `audit`, never UPDATE, DELETE or TRUNCATE them.

DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceon_console') THEN
        CREATE ROLE traceon_console LOGIN;  -- set its password with \password traceon_console
    END IF;
END $$;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM traceon_console;
REVOKE CREATE ON SCHEMA public FROM traceon_console;
GRANT USAGE ON SCHEMA public TO traceon_console;

-- the tracer's tables (sightings, coverage): read only, for traces and checkpoint pages
GRANT SELECT ON ALL TABLES IN SCHEMA public TO traceon_console;

-- the console's own tables
GRANT SELECT, INSERT, UPDATE ON console_users TO traceon_console;        -- an admin adds and changes users
GRANT SELECT, INSERT, UPDATE, DELETE ON console_sessions TO traceon_console;
GRANT SELECT, INSERT, UPDATE, DELETE ON console_throttle TO traceon_console;
GRANT SELECT, INSERT, UPDATE ON notices TO traceon_console;              -- withdrawing sets withdrawn_ms
GRANT USAGE ON SEQUENCE notices_id_seq TO traceon_console;

-- the audit log: append and read, nothing else (from PUBLIC neither, so no other grant reopens it)
REVOKE UPDATE, DELETE, TRUNCATE ON audit FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON audit FROM traceon_console;
GRANT SELECT, INSERT ON audit TO traceon_console;
