"""Custom-resource handler that applies the database migrations on every deploy.

CDK's Provider framework calls it on Create/Update/Delete; it answers with the applied list.
"""

from aws_lambda_powertools import Logger

from trainset.store.config import database_url
from trainset.store.db import connect, parse_url
from trainset.store.migrations import migrate

logger = Logger(service="trainset-migrate")


def add_manager(name: str) -> dict:
    """Create the first manager's coder row (invoked by hand once after the first deploy:
    the database is only reachable from inside the VPC). Applies pending migrations first."""
    from trainset.errors import TrainsetError
    from trainset.services.labeling import CoderAdmin
    from trainset.store.labeling import LabelingStore

    conn = connect(parse_url(database_url()))
    try:
        migrate(conn)
        try:
            coder = CoderAdmin(LabelingStore(conn)).create(
                None, {"name": name, "role": "manager", "status": "certified"})
        except TrainsetError as exc:
            return {"ok": False, "error": exc.message, "details": exc.details}
    finally:
        conn.close()
    logger.info("manager created", extra={"coder": coder.name, "id": coder.id})
    return {"ok": True, "coder": coder.as_dict()}


@logger.inject_lambda_context
def lambda_handler(event: dict, context: object) -> dict:
    if event.get("action") == "add-manager":  # a manual invocation, not CloudFormation's
        return add_manager(str(event.get("name", "")))
    request = event.get("RequestType", "Create")
    physical_id = event.get("PhysicalResourceId") or "trainset-schema"
    if request == "Delete":  # the schema outlives the stack's custom resource
        return {"PhysicalResourceId": physical_id}
    settings = parse_url(database_url())
    logger.info("migrating", extra={"database": settings.safe_description()})
    conn = connect(settings)
    try:
        applied = migrate(conn)
    finally:
        conn.close()
    logger.info("migrations applied", extra={"applied": applied})
    return {"PhysicalResourceId": physical_id, "Data": {"Applied": ",".join(applied) or "none"}}
