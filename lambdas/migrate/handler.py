"""Custom-resource handler that applies the database migrations on every deploy.

CDK's Provider framework calls it on Create/Update/Delete; it answers with the applied list.
"""

from aws_lambda_powertools import Logger

from trainset.store.config import database_url
from trainset.store.db import connect, parse_url
from trainset.store.migrations import migrate

logger = Logger(service="trainset-migrate")


@logger.inject_lambda_context
def lambda_handler(event: dict, context: object) -> dict:
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
