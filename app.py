#!/usr/bin/env python3
"""The CDK app: `cdk synth` / `cdk deploy` (stage from context: `-c stage=prod`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from billing.settings import STACK_NAME_PREFIX
from stacks.billing_stack import BillingStack
from stacks.settings import Stage

# Behaviour the stack relies on, whatever cdk.json or the command line says.
FEATURE_FLAGS = {
    # Server access logs are delivered under a bucket policy, so the log bucket can keep
    # ACLs disabled (BucketOwnerEnforced) instead of granting LogDeliveryWrite.
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
}


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> cdk.App:
    """The app; `context` adds to cdk.json's (tests pass `aws:cdk:bundling-stacks`)."""
    app = cdk.App(context={**(context or {}), **FEATURE_FLAGS}, outdir=outdir)
    stage = Stage.from_context(app.node)
    BillingStack(
        app,
        f"{STACK_NAME_PREFIX}-{stage.name}",
        stage=stage,
        description=f"Real-time usage billing ({stage.name})",
    )
    # cdk-nag runs on every synth; an unacknowledged finding fails it.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(verbose=True))
    return app


if __name__ == "__main__":
    build_app().synth()
