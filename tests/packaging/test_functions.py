"""Each function imported and run from exactly what it deploys with, nothing else on sys.path.

For every function: its handler module(s), every module of its own code (the API's chalicelib
routes) and every module its own code imports anywhere (imports inside functions included) are
imported in a clean interpreter; then each handler runs on a real event, against the session's
PostgreSQL and moto's S3/Step Functions. Image functions are checked with this interpreter
(3.11) and their requirements' pins; their base image (3.12) is not reachable from here.
"""

from __future__ import annotations

import ast
import json
import sys
import sysconfig
import uuid
from pathlib import Path

import pytest

from tests.events import s3_event, sns_event
from tests.factories import CHILD_NO, CHILD_YES, make_campaign, make_coder, make_posts, service
from tests.factories import submission as label
from tests.packaging.functions import FUNCTIONS, Deployed
from tests.packaging.runner import Run, run_in_function

STDLIB = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib")}
ZIPPED_STDLIB = f"python{sys.version_info.major}{sys.version_info.minor}.zip"
IMAGES_BUCKET = "trainset-images-packaging"
EXPORTS_BUCKET = "trainset-exports-packaging"
IMPORTS_BUCKET = "trainset-imports-packaging"


# ---- what to import -------------------------------------------------------------------------


def own_code(deployed: Deployed) -> list[Path]:
    """The function's own modules: the handler files, and the API's app.py and chalicelib/
    (not the trainset package, nor Chalice's runtime the deployment carries)."""
    task = deployed.task
    files = [task / f"{m.replace('.', '/')}.py" for m in deployed.function.handler_modules]
    if (task / "chalicelib").is_dir():
        files += sorted((task / "chalicelib").glob("*.py"))
    return [f for f in files if f.is_file()]


def module_name(deployed: Deployed, path: Path) -> str:
    relative = path.relative_to(deployed.task).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def _is_module(deployed: Deployed, dotted: str) -> bool:
    relative = Path(*dotted.split("."))
    for folder in deployed.path:
        base = folder / relative
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return True
        if base.parent.is_dir() and any(base.parent.glob(f"{base.name}.*.so")):
            return True
    return False


def imported_anywhere(deployed: Deployed, files: list[Path]) -> list[str]:
    """Every module the files import, at the top or inside a function (absolute imports;
    `from package import module` names the module)."""
    names: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "__future__":
                    continue
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names
                             if _is_module(deployed, f"{node.module}.{alias.name}"))
    return sorted(names)


def import_steps(deployed: Deployed) -> list[dict]:
    """Step 1: the handler modules and the function's own modules, as Lambda's init does
    (the API's app imports every route module). Step 2: what they import anywhere."""
    files = own_code(deployed)
    first = deployed.function.handler_modules + [module_name(deployed, f) for f in files]
    return [{"do": "import", "modules": list(dict.fromkeys(first)),
             "attributes": sorted(deployed.function.handlers.values())},
            {"do": "import", "modules": imported_anywhere(deployed, files)}]


def failures(step: dict) -> dict[str, str]:
    return {name: r["error"]["traceback"] for name, r in step["imports"].items() if not r["ok"]}


def outside(deployed: Deployed, modules: dict[str, str | None]) -> dict[str, str]:
    """Loaded modules whose file is neither in the function's folders nor the stdlib."""
    roots = [str(p) for p in deployed.path] + sorted(STDLIB)
    return {name: file for name, file in modules.items()
            if file and name not in ("__main__", "__mp_main__")  # the harness
            and not any(file.startswith(root.rstrip("/") + "/") for root in roots)}


@pytest.mark.parametrize("function", FUNCTIONS, ids=str)
def test_every_module_of_the_function_imports_from_its_own_package(
        function, deployments, tmp_path):
    deployed = deployments(function.name)
    run = run_in_function(deployed, import_steps(deployed), tmp_path,
                          env={"TRAINSET_AUTH": "cognito"} if function.chalice_app else None)
    assert len(run.steps) == 2, run.explain()
    init, lazy = run.steps
    assert failures(init) == {}, run.explain()
    assert failures(lazy) == {}, run.explain()
    assert outside(deployed, lazy["modules"]) == {}
    # Nothing outside the function's folders was on its path.
    allowed = [str(p) for p in deployed.path] + sorted(STDLIB)
    for entry in run.results["sys_path"]:
        assert any(entry.startswith(root) for root in allowed) or entry.endswith(ZIPPED_STDLIB)
    # Every handler the stack names is there and callable.
    assert init["attributes"] == {h: "callable" for h in function.handlers.values()}


def test_the_api_does_not_load_numpy_at_init(deployments, tmp_path):
    """The API's cold start: numpy (in the deps layer) is imported by the routes that use it,
    on use, so every other request's container starts without it (see infra_cdk/README.md)."""
    deployed = deployments("api")
    run = run_in_function(deployed, import_steps(deployed)[:1], tmp_path,
                          env={"TRAINSET_AUTH": "cognito"})
    (init,) = run.steps
    assert failures(init) == {}, run.explain()
    heavy = {"numpy", "pandas", "pyarrow", "PIL", "tensorflow"} & set(init["modules"])
    assert not heavy, (f"importing the API loads {sorted(heavy)}: import it inside the route "
                       "that needs it, so other requests' cold starts do not pay for it")


# ---- handlers on real events ----------------------------------------------------------------


def invoke(handler: str, event: dict, name: str = "trainset-test") -> dict:
    return {"do": "invoke", "handler": handler, "event": event, "function_name": name}


def results(run: Run) -> list[dict]:
    assert run.steps, run.explain()
    for step in run.steps:
        assert step["ok"], step["error"]["traceback"] + "\n" + run.explain()
    return [step["result"] for step in run.steps]


def test_migrate_runs_from_its_package(deployments, tmp_path, db, database_url):
    deployed = deployments("migrate")
    run = run_in_function(deployed, [
        invoke("handler.lambda_handler",
               {"RequestType": "Update", "PhysicalResourceId": "trainset-schema"}),
        invoke("handler.lambda_handler", {"action": "add-manager", "name": "first-manager"}),
    ], tmp_path, env={"TRAINSET_DATABASE_URL": database_url})
    update, manager = results(run)
    assert update == {"PhysicalResourceId": "trainset-schema", "Data": {"Applied": "none"}}
    assert manager["ok"] and manager["coder"]["role"] == "manager"


def _jpeg(array) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(array).convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()


def _bucket(aws, name: str):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=name)
    return s3


def test_augment_runs_from_its_package(deployments, tmp_path, aws):
    from skimage import data

    s3 = _bucket(aws, IMAGES_BUCKET)
    body = _jpeg(data.coffee())
    s3.put_object(Bucket=IMAGES_BUCKET, Key="uploads/coffee.jpg", Body=body)
    event = sns_event(s3_event(IMAGES_BUCKET, [("uploads/coffee.jpg", len(body))]))
    run = run_in_function(deployments("augment"), [invoke("handler.lambda_handler", event)],
                          tmp_path, env={**aws.environment,
                                         "TRAINSET_IMAGES_BUCKET": IMAGES_BUCKET})
    (result,) = results(run)
    assert result["counts"]["processed"] == 1 and result["batchItemFailures"] == []
    variants = s3.list_objects_v2(Bucket=IMAGES_BUCKET, Prefix="variants/")["KeyCount"]
    assert variants == 10


def test_face_clip_runs_from_its_image_packages(deployments, tmp_path, aws):
    from skimage import data

    s3 = _bucket(aws, IMAGES_BUCKET)
    body = _jpeg(data.astronaut())
    s3.put_object(Bucket=IMAGES_BUCKET, Key="uploads/astronaut.jpg", Body=body)
    event = s3_event(IMAGES_BUCKET, [("uploads/astronaut.jpg", len(body))])
    # AWS_LAMBDA_FUNCTION_NAME is set, so the module loads MTCNN at import, as in Lambda.
    run = run_in_function(deployments("face-clip"), [invoke("handler.lambda_handler", event)],
                          tmp_path, env={**aws.environment,
                                         "TRAINSET_IMAGES_BUCKET": IMAGES_BUCKET})
    (result,) = results(run)
    assert result["counts"]["processed"] == 1 and result["batchItemFailures"] == []
    assert s3.list_objects_v2(Bucket=IMAGES_BUCKET, Prefix="faces/")["KeyCount"] == 1


def _labeled_posts_with_images(db, s3, n: int = 6) -> None:
    """Posts of the child family, each with an image in the images bucket, labeled by two
    coders who agree."""
    import numpy as np

    ids = make_posts(db, n, prefix="img")
    rng = np.random.default_rng(7)
    for post_id in ids:
        key = f"uploads/{post_id}.jpg"
        s3.put_object(Bucket=IMAGES_BUCKET, Key=key,
                      Body=_jpeg(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)))
        db.run("UPDATE posts SET image_key = :key WHERE id = :id", key=key, id=post_id)
    make_campaign(db, ids, labels_per_post=2)
    for name in ("ana", "ben"):
        coder = make_coder(db, name)
        labeling = service(db)
        while (task := labeling.next_task(coder, "child")["task"]) is not None:
            answers = CHILD_YES if int(task["post_id"][-1]) % 2 == 0 else CHILD_NO
            labeling.submit(coder, label(task["post_id"], answers))


def test_export_job_tasks_run_from_their_image_packages(deployments, tmp_path, aws, db,
                                                         database_url):
    """The state machine's path for one family with images, one task per process as Lambda
    runs them (each task's output is the next one's event), then the failure task."""
    s3 = _bucket(aws, IMAGES_BUCKET)
    s3.create_bucket(Bucket=EXPORTS_BUCKET)
    _labeled_posts_with_images(db, s3)
    deployed = deployments("export-job")
    env = {**aws.environment, "TRAINSET_DATABASE_URL": database_url,
           "TRAINSET_IMAGES_BUCKET": IMAGES_BUCKET, "TRAINSET_EXPORTS_BUCKET": EXPORTS_BUCKET}
    job_id = f"export-packaging-{uuid.uuid4().hex[:8]}"

    def task(name: str, event: dict) -> dict:
        handler = deployed.function.handlers[f"ExportJob{name}"]
        (result,) = results(run_in_function(deployed, [invoke(handler, event)], tmp_path,
                                            env=env))
        return result

    event = task("Quality", {"job_id": job_id, "family": "child"})
    event = task("Screen", event)
    plan = task("Plan", {"job_id": job_id, "families": [event]})
    # Every file of the export was written: none skipped for want of a package in the image.
    assert plan["families"][0].get("files_skipped", {}) == {}
    items = json.loads(s3.get_object(Bucket=plan["bucket"], Key=plan["items_key"])["Body"]
                       .read())
    assert len(items) == plan["shards"] >= 1
    assert sum(task("Shard", item)["records"] for item in items) == 6  # the Map's children
    (event,) = task("Merge", {"job_id": job_id, "plan": plan})
    assert event["records"] == event["verified"] == 6
    summary = task("Summary", {"job_id": job_id, "families_done": [event]})
    assert summary["records"] == 6
    # The TFRecords carry the images (their sizes read with Pillow).
    features = s3.get_object(Bucket=EXPORTS_BUCKET, Key=event["prefix"] + "features.json")
    assert b"image" in features["Body"].read()
    failed = task("Failure", {"job_id": job_id, "error": {"Error": "Boom", "Cause": "{}"}})
    assert failed["error"].startswith("Boom")


def _import_upload(aws, db, filename: str, body: bytes) -> tuple[str, dict]:
    """A corpus file uploaded to the imports bucket, and the S3 event that announces it."""
    from trainset.services.imports import upload_key

    s3 = aws.client("s3")
    s3.create_bucket(Bucket=IMPORTS_BUCKET)
    key = upload_key("corpus", None, uuid.uuid4().hex, filename)
    s3.put_object(Bucket=IMPORTS_BUCKET, Key=key, Body=body)
    return key, s3_event(IMPORTS_BUCKET, [(key, len(body))])


def _run_import_job(deployments, tmp_path, aws, database_url, key: str, event: dict) -> dict:
    """The upload's event through the start function, then the state machine's path for a
    small file, one task per process: Plan, the one batch, Finish; then Failure."""
    tasks, start = deployments("import-job"), deployments("import-start")
    machine = aws.client("stepfunctions").create_state_machine(
        name="trainset-import", roleArn="arn:aws:iam::000000000000:role/import",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
    )["stateMachineArn"]
    env = {**aws.environment, "TRAINSET_DATABASE_URL": database_url,
           "TRAINSET_IMPORTS_BUCKET": IMPORTS_BUCKET,
           "TRAINSET_IMPORT_STATE_MACHINE_ARN": machine}

    def task(name: str, task_event: dict) -> dict:
        deployed = start if name == "Start" else tasks
        handler = deployed.function.handlers[f"ImportJob{name}"]
        (result,) = results(run_in_function(deployed, [invoke(handler, task_event)], tmp_path,
                                            env=env))
        return result

    (started,) = task("Start", event)["started"]
    execution = aws.client("stepfunctions").describe_execution(
        executionArn=f"{machine.replace(':stateMachine:', ':execution:')}:"
                     f"{started['execution']}")
    upload = json.loads(execution["input"])
    assert upload["key"] == key
    plan = task("Plan", {"bucket": upload["bucket"], "key": key, "size": upload["size"],
                         "run": started["execution"]})
    assert not plan["distributed"]
    batch = task("Batch", plan["first"])
    finished = task("Finish", {"bucket": plan["bucket"], "import_id": plan["import_id"],
                               "run": plan["run"], "key": key})
    failed = task("Failure", {"key": key, "run": plan["run"],
                              "error": {"Error": "Boom", "Cause": "{}"}})
    assert failed["error"].startswith("Boom")
    return {"batch": batch, "finished": finished}


def _corpus_rows(n: int) -> list[dict]:
    return [{"id": f"imp{i:04d}", "text": f"post {i} about a toddler at the park",
             "keyword": "toddler", "family": "child"} for i in range(n)]


def test_import_job_runs_a_csv_upload_from_its_package(deployments, tmp_path, aws, db,
                                                        database_url):
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["id", "text", "keyword", "family"])
    writer.writeheader()
    writer.writerows(_corpus_rows(5))
    key, event = _import_upload(aws, db, "posts.csv", out.getvalue().encode())
    done = _run_import_job(deployments, tmp_path, aws, database_url, key, event)
    assert done["finished"]["rejected"] == 0
    assert db.run("SELECT count(*) FROM posts WHERE id LIKE 'imp%'")[0][0] == 5


def test_import_job_runs_a_parquet_upload_from_its_package(deployments, tmp_path, aws, db,
                                                            database_url):
    import io

    import pandas as pd

    out = io.BytesIO()
    pd.DataFrame(_corpus_rows(5)).to_parquet(out)
    key, event = _import_upload(aws, db, "posts.parquet", out.getvalue())
    _run_import_job(deployments, tmp_path, aws, database_url, key, event)
    assert db.run("SELECT count(*) FROM posts WHERE id LIKE 'imp%'")[0][0] == 5
