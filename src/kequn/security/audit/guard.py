"""Database triggers that make the audit table append-only, and the SQLite purge switch.

On PostgreSQL a trigger rejects every UPDATE and DELETE of an audit row, and another rejects
TRUNCATE unless the session setting kequn.audit_purge is 'on'. Django's connections set it only
while a purge is allowed (test set-up: Django's flush empties tables with TRUNCATE). A restore
loads in replica mode, where these triggers do not fire.

On SQLite the UPDATE trigger always rejects; the DELETE trigger rejects unless the
kequn_audit_guard() SQL function, registered on Django's connections, says a purge is allowed.
Only test set-up allows it (Django's flush empties tables with DELETE). In any other SQLite
client the function does not exist, so an UPDATE or DELETE fails there too.
"""

from __future__ import annotations

from django.db import connections

TABLE = "audit_auditentry"
MESSAGE = "audit entries are append-only"

_purge_allowed = False


def allow_purge(allowed: bool) -> None:
    """Let Django's connections empty the audit table (tests only)."""
    global _purge_allowed
    _purge_allowed = allowed
    for conn in connections.all(initialized_only=True):
        if conn.vendor == "postgresql" and conn.connection is not None:
            _set_postgres_purge(conn)


def _set_postgres_purge(conn) -> None:
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('kequn.audit_purge', %s, false)", ["on" if _purge_allowed else "off"]
        )


def is_guarded() -> int:
    """Return 1 while DELETE on the audit table must be rejected (SQLite trigger condition)."""
    return 0 if _purge_allowed else 1


def prepare_connection(sender, connection, **kwargs) -> None:
    """Register kequn_audit_guard() on a new SQLite connection; pass the purge switch to PostgreSQL."""
    if connection.vendor == "sqlite":
        connection.connection.create_function("kequn_audit_guard", 0, is_guarded)
    elif connection.vendor == "postgresql" and _purge_allowed:
        _set_postgres_purge(connection)


SQLITE_CREATE = [
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE}
        WHEN kequn_audit_guard() BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_update",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_delete",
]
POSTGRES_CREATE = [
    f"""CREATE OR REPLACE FUNCTION {TABLE}_reject() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'insufficient_privilege'; END $$""",
    f"""CREATE OR REPLACE TRIGGER {TABLE}_no_change BEFORE UPDATE OR DELETE ON {TABLE}
        FOR EACH ROW EXECUTE FUNCTION {TABLE}_reject()""",
    f"""CREATE OR REPLACE FUNCTION {TABLE}_reject_truncate() RETURNS trigger LANGUAGE plpgsql
        AS $$ BEGIN
            IF coalesce(current_setting('kequn.audit_purge', true), '') <> 'on' THEN
                RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NULL;
        END $$""",
    f"""CREATE OR REPLACE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}
        FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_reject_truncate()""",
]
POSTGRES_DROP = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_change ON {TABLE}",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}",
    f"DROP FUNCTION IF EXISTS {TABLE}_reject()",
    f"DROP FUNCTION IF EXISTS {TABLE}_reject_truncate()",
]


def create_triggers(schema_editor) -> None:
    """Install the append-only triggers for the connection's database."""
    statements = {"sqlite": SQLITE_CREATE, "postgresql": POSTGRES_CREATE}
    for sql in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


def drop_triggers(schema_editor) -> None:
    """Remove the append-only triggers."""
    statements = {"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP}
    for sql in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)
