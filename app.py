#!/usr/bin/env python3
"""The CDK app: `cdk synth` / `cdk deploy` (stage from context: `-c stage=prod`)."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from billing.resources import STACK_NAME_PREFIX
from stacks.billing_stack import BillingStack
from stacks.settings import Stage


def build_app() -> cdk.App:
    app = cdk.App()
    stage = Stage(name=app.node.try_get_context("stage") or "dev")
    BillingStack(app, f"{STACK_NAME_PREFIX}-{stage.name}", stage=stage)
    # cdk-nag runs on every synth; an unacknowledged finding fails it.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(verbose=True))
    return app


if __name__ == "__main__":
    build_app().synth()
