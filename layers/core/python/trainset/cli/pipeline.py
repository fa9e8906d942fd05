"""``python -m trainset pipeline run``: the export job, locally, on the same state machine."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from trainset.codebook import FAMILY_NAMES


def cmd_pipeline_run(args: argparse.Namespace) -> int:
    from trainset.cli import _connection
    from trainset.local import pipeline as local
    from trainset.local.embedded import project_home
    from trainset.services.pipeline import start_job
    from trainset.store.jobs import JobStore
    from trainset.store.migrations import migrate

    out = Path(args.out) if args.out else project_home() / "exports"
    with _connection() as conn:
        migrate(conn)
        arns: dict[str, str] = {}

        def launch(job_id: str, families: list[str]) -> None:
            arns[job_id] = local.start(job_id, families, copy_to=out)

        job = start_job(JobStore(conn), launch, args.family, None)
        print(f"export job {job['job_id']} started for {', '.join(job['families'])}; "
              "running the state machine locally...", flush=True)
        result = local.wait(arns[job["job_id"]])
        record = JobStore(conn).get(job["job_id"])
        if result["status"] == "SUCCEEDED":
            folder = local.download(job["job_id"], out)
    local.stop_stand_in()
    if result["status"] != "SUCCEEDED":
        print(f"error: export job {job['job_id']} {result['status'].lower()}: "
              f"{(record or {}).get('error') or result.get('cause')}")
        return 2
    summary = record["output"]
    for family in summary["families"]:
        print(f"  {family['family']}: {family['verified']} records verified, "
              f"{family['posts_kept']} posts kept, {family['relabel_requested']} re-labels "
              f"requested; files under {family['prefix']}")
    print(f"summary: {summary['summary_key']} ({summary['records']} records in all)")
    print(f"files copied to {folder}")
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    return 0


def register(sub: Any) -> None:
    pipe = sub.add_parser("pipeline", help="the export job (QA and TFRecord export)")
    p_sub = pipe.add_subparsers(dest="pipeline_command", required=True, metavar="ACTION")
    run = p_sub.add_parser(
        "run", help="run the export job locally, on the state machine CDK deploys",
        description="Per family: gold scoring and consensus, screening and re-label queueing, "
        "TFRecord export and verification; then a summary. Runs the same Step Functions "
        "definition as AWS, in moto's interpreter, writing to the local S3 stand-in.")
    run.add_argument("--family", action="append", choices=FAMILY_NAMES,
                     help="a family to export (repeatable; default: all)")
    run.add_argument("--out", help="folder the job's files are copied to "
                     "(default: $TRAINSET_HOME/exports, i.e. .trainset/exports)")
    run.add_argument("--json", action="store_true", help="also print the summary as JSON")
    run.set_defaults(func=cmd_pipeline_run)
