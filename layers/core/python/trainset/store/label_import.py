"""SQL for importing prior labels: sources, their coders, missing posts, imported labels.

Callers own the transaction (one per import, see ``services.label_import``); nothing here
commits by itself.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

from trainset.store.db import Connection, transaction

_LOCK_KEY = 720_135_507  # advisory lock space for label imports (per source)


class LabelImportStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def transaction(self) -> contextlib.AbstractContextManager[Connection]:
        return transaction(self.conn)

    def lock_source(self, source: str) -> None:
        """Two imports of one source queue up, so revisions and coders are never raced."""
        self.conn.run("SELECT pg_advisory_xact_lock(:key, hashtext(:source))",
                      key=_LOCK_KEY, source=source)

    def ensure_source(self, source: str) -> int:
        self.conn.run("INSERT INTO label_sources (name) VALUES (:name)"
                      " ON CONFLICT (name) DO NOTHING", name=source)
        return int(self.conn.run("SELECT id FROM label_sources WHERE name = :name",
                                 name=source)[0][0])

    def coder_names_taken(self, source_id: int, names: Sequence[str]) -> set[str]:
        """Of ``names``, those held by a coder that is not this source's: labels are never
        attached to a person who signs in, nor to another source's coder."""
        rows = self.conn.run(
            "SELECT c.name FROM coders c WHERE c.name = ANY(CAST(:names AS text[]))"
            " AND NOT EXISTS (SELECT 1 FROM source_coders s WHERE s.coder_id = c.id"
            "   AND s.source_id = :source)",
            names=list(names), source=source_id)
        return {r[0] for r in rows}

    def ensure_coders(self, source_id: int, coders: Sequence[tuple[str, str]]
                      ) -> tuple[dict[str, int], int]:
        """Coder rows (certified coders) for (name, source coder) pairs, made when missing and
        registered in ``source_coders``; returns ({name: id}, how many were made)."""
        names = [c[0] for c in coders]
        created = self.conn.run(
            "WITH wanted AS ("
            "  SELECT * FROM unnest(CAST(:names AS text[]), CAST(:originals AS text[]))"
            "  AS u(name, original)),"
            " made AS ("
            "  INSERT INTO coders (name, role, status)"
            "  SELECT name, 'coder', 'certified' FROM wanted"
            "  ON CONFLICT (name) DO NOTHING RETURNING id, name)"
            " INSERT INTO source_coders (coder_id, source_id, source_coder)"
            " SELECT m.id, :source, w.original FROM made m JOIN wanted w ON w.name = m.name"
            " RETURNING coder_id",
            names=names, originals=[c[1] for c in coders], source=source_id)
        rows = self.conn.run(
            "SELECT c.name, c.id FROM coders c JOIN source_coders s ON s.coder_id = c.id"
            " WHERE s.source_id = :source AND c.name = ANY(CAST(:names AS text[]))",
            source=source_id, names=names)
        return {name: coder_id for name, coder_id in rows}, len(created)

    def existing_posts(self, post_ids: Sequence[str]) -> set[str]:
        # A join, not "= ANY(array)": right after a bulk load the planner may not know the
        # table's size and scan it once per array element.
        rows = self.conn.run("SELECT p.id FROM unnest(CAST(:ids AS text[])) AS u(id)"
                             " JOIN posts p ON p.id = u.id", ids=list(post_ids))
        return {r[0] for r in rows}

    def insert_missing_posts(self, posts: Sequence[Any]) -> int:
        """Create posts (``ingest.PostRow``) that do not exist; an existing post is never
        changed by a label import. Returns how many were created."""
        if not posts:
            return 0
        rows = self.conn.run(
            "INSERT INTO posts (id, text, image_key, keyword, family, author, created_at,"
            " text_hash, extra)"
            " SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:texts AS text[]),"
            "  CAST(:images AS text[]), CAST(:keywords AS text[]), CAST(:families AS text[]),"
            "  CAST(:authors AS text[]), CAST(:created AS timestamptz[]),"
            "  CAST(:hashes AS text[]), CAST(:extras AS jsonb[]))"
            " ON CONFLICT (id) DO NOTHING RETURNING id",
            ids=[p.id for p in posts], texts=[p.text for p in posts],
            images=[p.image_key for p in posts], keywords=[p.keyword for p in posts],
            families=[p.family for p in posts], authors=[p.author for p in posts],
            created=[p.created_at for p in posts], hashes=[p.text_hash for p in posts],
            extras=[json.dumps(p.extra) for p in posts])
        return len(rows)

    def existing_submissions(self, submission_ids: Sequence[str]) -> set[str]:
        rows = self.conn.run(
            "SELECT CAST(l.submission_id AS text) FROM unnest(CAST(:ids AS uuid[])) AS u(sid)"
            " JOIN labels l ON l.submission_id = u.sid", ids=list(submission_ids))
        return {r[0] for r in rows}

    def record_import(self, source_id: int, family: str, fmt: str, file: str, sha256: str,
                      summary: dict[str, Any]) -> int:
        return int(self.conn.run(
            "INSERT INTO label_imports (source_id, family, format, file, file_sha256, summary)"
            " VALUES (:source, :family, :format, :file, :sha, CAST(:summary AS jsonb))"
            " RETURNING id",
            source=source_id, family=family, format=fmt, file=file, sha=sha256,
            summary=json.dumps(summary))[0][0])

    def insert_labels(self, import_id: int, family: str, labels: Sequence[dict[str, Any]]
                      ) -> int:
        """Imported labels (kind 'imported', no task, coder status 'certified'); each is the
        next revision of its post and coder. A submission id already stored is skipped.
        Returns how many were stored."""
        if not labels:
            return 0
        rows = self.conn.run(
            "WITH incoming AS ("
            "  SELECT * FROM unnest(CAST(:sids AS uuid[]), CAST(:posts AS text[]),"
            "   CAST(:coders AS bigint[]), CAST(:answers AS jsonb[]),"
            "   CAST(:locations AS text[]), CAST(:seconds AS real[]))"
            "   WITH ORDINALITY AS u(sid, post_id, coder_id, answers, location, seconds, ord)),"
            " fresh AS ("
            "  SELECT i.* FROM incoming i"
            "  WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE l.submission_id = i.sid)),"
            " numbered AS ("
            "  SELECT f.*, COALESCE((SELECT max(l.revision) FROM labels l"
            "    WHERE l.post_id = f.post_id AND l.family = :family"
            "    AND l.coder_id = f.coder_id), 0)"
            "   + row_number() OVER (PARTITION BY f.post_id, f.coder_id ORDER BY f.ord)"
            "   AS revision FROM fresh f)"
            " INSERT INTO labels (submission_id, post_id, family, coder_id, revision, kind,"
            "  task_id, answers, coder_status, seconds_spent, import_id, import_location)"
            " SELECT sid, post_id, :family, coder_id, revision, 'imported', NULL, answers,"
            "  'certified', seconds, :import_id, location FROM numbered ORDER BY ord"
            " ON CONFLICT (submission_id) DO NOTHING RETURNING id",
            sids=[lab["submission_id"] for lab in labels],
            posts=[lab["post_id"] for lab in labels],
            coders=[lab["coder_id"] for lab in labels],
            answers=[json.dumps(lab["answers"]) for lab in labels],
            locations=[lab["location"] for lab in labels],
            seconds=[lab["seconds_spent"] for lab in labels],
            family=family, import_id=import_id)
        return len(rows)
