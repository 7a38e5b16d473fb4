"""The project's customer-managed KMS key: every store and log group is encrypted with it."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, aws_kms
from constructs import Construct

from stacks.settings import Stage


class Security(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage) -> None:
        super().__init__(scope, construct_id)
        self.key = aws_kms.Key(
            self,
            "DataKey",
            description="Encrypts usage, aggregates, invoices and logs of usage billing",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN if stage.is_production else RemovalPolicy.DESTROY,
        )
