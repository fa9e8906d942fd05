"""Migrations against a real PostgreSQL: recorded, idempotent, and protective of applied files."""

import shutil

import pg8000.native
import pytest

from trainset.errors import ConfigurationError
from trainset.store.migrations import default_sql_dir, load, migrate


def test_running_twice_applies_nothing_new(db):
    assert migrate(db) == []
    versions = [r[0] for r in db.run("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [m.version for m in load(default_sql_dir())]


def test_edited_applied_migration_is_reported(db, tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(default_sql_dir(), sql_dir)
    first = sorted(sql_dir.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(ConfigurationError, match="changed after it was applied"):
        migrate(db, sql_dir)


def test_misnamed_migration_is_an_error(tmp_path):
    (tmp_path / "1_bad.sql").write_text("SELECT 1")
    with pytest.raises(ConfigurationError, match="NNNN_name.sql"):
        load(tmp_path)


def test_new_migration_is_applied_once_in_its_transaction(db, tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(default_sql_dir(), sql_dir)
    (sql_dir / "9998_extra.sql").write_text("CREATE TABLE extra_probe (id int);")
    (sql_dir / "9999_broken.sql").write_text("CREATE TABLE broken_probe (id int); SELECT nope;")
    with pytest.raises(pg8000.native.DatabaseError, match="nope"):
        migrate(db, sql_dir)
    tables = {r[0] for r in db.run("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert "extra_probe" in tables and "broken_probe" not in tables
    db.run("DROP TABLE extra_probe")
    db.run("DELETE FROM schema_migrations WHERE version = '9998'")


def test_labels_are_append_only(db):
    from tests.factories import make_campaign, make_coder, make_posts, service, submission

    coder = make_coder(db, "ana")
    ids = make_posts(db, 1)
    make_campaign(db, ids)
    svc = service(db)
    svc.next_task(coder, "child")
    svc.submit(coder, submission(ids[0]))
    with pytest.raises(Exception, match="append-only"):
        db.run("UPDATE labels SET answers = '{}'::jsonb")
    with pytest.raises(Exception, match="append-only"):
        db.run("DELETE FROM labels")


def test_imported_labels_migration_applies_on_top_of_existing_data(db, database_url, tmp_path):
    """0007 on a database that already holds live labels: they stay valid and visible, and
    the new kind needs its provenance."""
    import dataclasses

    from tests.conftest import admin_identifier
    from trainset.store.db import connect, parse_url

    before = tmp_path / "sql"
    before.mkdir()
    for m in load(default_sql_dir()):
        if m.version < "0007":
            (before / f"{m.version}_{m.name}.sql").write_text(m.sql)
    name = "trainset_mig_0007_probe"
    db.run("DROP DATABASE IF EXISTS " + admin_identifier(name))
    db.run("CREATE DATABASE " + admin_identifier(name))
    conn = connect(dataclasses.replace(parse_url(database_url), database=name))
    try:
        migrate(conn, before)
        conn.run("INSERT INTO coders (name, status) VALUES ('ana', 'certified')")
        conn.run("INSERT INTO posts (id, text, text_hash) VALUES ('p1', 'a post', 'h')")
        conn.run("INSERT INTO labels (submission_id, post_id, family, coder_id, revision, kind,"
                 " answers, coder_status) VALUES (gen_random_uuid(), 'p1', 'child', 1, 1,"
                 " 'task', '{\"is_child\": false}', 'certified')")
        assert [v.split("_")[0] for v in migrate(conn)] == [
            m.version for m in load(default_sql_dir()) if m.version >= "0007"]
        assert conn.run("SELECT post_id, kind, import_id, import_location"
                        " FROM current_labels") == [["p1", "task", None, None]]
        with pytest.raises(pg8000.native.DatabaseError, match="labels_imported_provenance"):
            conn.run("INSERT INTO labels (submission_id, post_id, family, coder_id, revision,"
                     " kind, answers, coder_status) VALUES (gen_random_uuid(), 'p1', 'child',"
                     " 1, 2, 'imported', '{\"is_child\": false}', 'certified')")
        with pytest.raises(pg8000.native.DatabaseError, match="labels_kind_check"):
            conn.run("INSERT INTO labels (submission_id, post_id, family, coder_id, revision,"
                     " kind, answers, coder_status) VALUES (gen_random_uuid(), 'p1', 'child',"
                     " 1, 2, 'copied', '{\"is_child\": false}', 'certified')")
    finally:
        conn.close()
        db.run("DROP DATABASE IF EXISTS " + admin_identifier(name) + " WITH (FORCE)")
