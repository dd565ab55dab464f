"""The release step: a database migration that must finish before the app
starts (as `python manage.py migrate` or `alembic upgrade head` would).

It creates the SQLite database the app and worker use, applies the
migrations that are not applied yet, and exits 0; a failure exits non-zero,
and pyinit then starts nothing else and exits with that status.
"""
import os
import sqlite3
import sys

DB = os.environ.get("APP_DB", "/tmp/pyinit-example.sqlite3")
MIGRATIONS = [
    ("0001_jobs", "CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, name TEXT)"),
    ("0002_jobs_done", "ALTER TABLE jobs ADD COLUMN done INTEGER DEFAULT 0"),
]

try:
    con = sqlite3.connect(DB, timeout=5)
    con.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY)")
    applied = {row[0] for row in con.execute("SELECT name FROM migrations")}
    for name, sql in MIGRATIONS:
        if name in applied:
            continue
        con.execute(sql)
        con.execute("INSERT INTO migrations VALUES (?)", (name,))
        con.commit()
        print(f"migrate: applied {name}")
    print(f"migrate: {DB} is up to date")
except sqlite3.Error as e:
    print(f"migrate: failed: {e}", file=sys.stderr)
    sys.exit(1)
