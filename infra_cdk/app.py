"""CDK entry point: `cdk deploy -c env=dev|prod` runs `python app.py` in this folder.

`build(app)` is what tests call on their own App; running the file synthesizes the app.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script from infra_cdk/, this folder is sys.path[0], and its `constructs/`
    # package would shadow the `constructs` library aws_cdk imports. Import infra_cdk as a
    # package from the repository root instead.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from aws_cdk import App  # noqa: E402

from infra_cdk import nag  # noqa: E402
from infra_cdk.config import settings_from_context  # noqa: E402
from infra_cdk.stacks.trainset_stack import TrainsetStack  # noqa: E402

BUILD_DIR = Path(__file__).resolve().parent  # Chalice writes chalice.out/ here


def build(app: App, *, build_dir: Path = BUILD_DIR) -> TrainsetStack:
    """Add the stack of the environment chosen by the `env` context, and the cdk-nag checks."""
    settings = settings_from_context(app.node)
    # Environment-agnostic on purpose: no context lookups (AZs come from Fn::GetAZs), so a
    # synth needs no AWS credentials; `cdk deploy` deploys to the profile's account/region.
    stack = TrainsetStack(app, settings.stack_name, settings=settings, build_dir=build_dir)
    nag.add_checks(app)
    return stack


def main() -> None:
    # Chalice packages the app with boto3, which needs a region; the CDK CLI knows it.
    region = os.environ.get("CDK_DEFAULT_REGION")
    if region:
        os.environ.setdefault("AWS_DEFAULT_REGION", region)
    # Each synth packages the app under a new chalice.out/<uuid>/; drop the old ones.
    shutil.rmtree(BUILD_DIR / "chalice.out", ignore_errors=True)
    app = App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
