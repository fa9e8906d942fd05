"""Where the deployable parts of the repository live (resolved from this file, not the cwd)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CHALICE_APP_DIR = REPO_ROOT / "chalice_app"
CORE_LAYER_DIR = REPO_ROOT / "layers" / "core"
DEPS_LAYER_DIR = REPO_ROOT / "layers" / "deps"
MIGRATE_FUNCTION_DIR = REPO_ROOT / "lambdas" / "migrate"
IMPORT_FUNCTION_DIR = REPO_ROOT / "lambdas" / "imports"
SQL_DIR = REPO_ROOT / "sql"
STATIC_SITE_DIR = REPO_ROOT / "static_site"
# The export job's state machine definition (ASL with ${<Task>FunctionArn} placeholders), shared
# with the local runner; read as a file, never imported.
EXPORT_JOB_ASL = CORE_LAYER_DIR / "python" / "trainset" / "data" / "export_job.asl.json"
# The import job's definition (ASL with ${<Task>FunctionArn} placeholders), shared with the local
# runner (trainset.local.imports).
IMPORT_JOB_ASL = CORE_LAYER_DIR / "python" / "trainset" / "data" / "import_job.asl.json"
