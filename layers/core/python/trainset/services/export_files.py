"""An export job's files besides the TFRecords, and download links for all of them.

Per family the export job also writes, beside its shards: the screened labels as CSV (and
Parquet when pyarrow is installed), the data card (JSON and Markdown) and the coder report
(HTML, and Excel when openpyxl is installed). A file that cannot be written for want of a
package is listed with the reason in the job's output, never silently left out.

Downloads go through one adapter with ``list``, ``size`` and ``download_url``: the exports
bucket in AWS (``S3Blobs``: presigned URLs that download as attachments), or locally the
folder the local runner copies each finished job to
(``trainset.local.downloads.LocalExportFiles``: links the local server serves, signed like
presigned URLs).
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

LIST_COLUMNS = ("study_labels", "study_soft_labels", "multi_hot", "soft_labels")
CONTENT_TYPES = {".csv": "text/csv", ".json": "application/json", ".md": "text/markdown",
                 ".html": "text/html", ".parquet": "application/octet-stream",
                 ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def labels_csv(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """The rows as ``export labels`` writes them: list columns as JSON, booleans as the
    study's True/False, empty cells for missing values."""
    out = io.StringIO()
    columns = list(rows[0]) if rows else ["post_id"]
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: json.dumps(r[c]) if c in LIST_COLUMNS else
                         "" if r[c] is None else r[c] for c in columns})
    return out.getvalue().encode("utf-8")


def dataset_files(store: Any, family: str, run_id: int, rows: Sequence[Mapping[str, Any]],
                  effect: Mapping[str, Any]) -> tuple[dict[str, bytes], dict[str, str]]:
    """``{file name: bytes}`` for a family's export, and ``{file name: why not written}``."""
    from trainset.quality import reporting
    from trainset.services.quality import coder_report, datacard, datacard_markdown

    run = store.run_by_id(run_id)
    card = datacard(family, run, rows, effect)
    files = {
        f"{family}_labels.csv": labels_csv(rows),
        "datacard.json": json.dumps(card, indent=2, default=str).encode("utf-8"),
        "datacard.md": datacard_markdown(card).encode("utf-8"),
    }
    skipped: dict[str, str] = {}
    report = coder_report(store, None, None, family)
    with tempfile.TemporaryDirectory() as tmp:
        html_path = Path(tmp) / "coder_report.html"
        reporting.write_html(report, html_path, f"trainset coder report, {family}, all labels")
        files["coder_report.html"] = html_path.read_bytes()
        try:
            xlsx_path = Path(tmp) / "coder_report.xlsx"
            reporting.write_xlsx(report, xlsx_path)
            files["coder_report.xlsx"] = xlsx_path.read_bytes()
        except ImportError:
            skipped["coder_report.xlsx"] = "openpyxl is not installed where the job runs"
    try:
        files[f"{family}_labels.parquet"] = labels_parquet(rows)
    except ImportError:
        skipped[f"{family}_labels.parquet"] = "pyarrow is not installed where the job runs"
    return files, skipped


def labels_parquet(rows: Sequence[Mapping[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([dict(r) for r in rows]), out)
    return out.getvalue()


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


def job_files(files: Any, job_id: str) -> list[dict[str, Any]]:
    """Every file of a finished job (``exports/<job>/...``) with its family (None for the
    job's summary), size and download link."""
    prefix = f"exports/{job_id}/"
    out = []
    for key in files.list(prefix):
        rest = key[len(prefix):]
        family, _, name = rest.rpartition("/")
        out.append({"family": family or None, "name": name, "key": key,
                    "size": files.size(key), "url": files.download_url(key)})
    return sorted(out, key=lambda f: (f["family"] or "", f["name"]))
