"""The stack only wires constructs together, one per concern."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from stacks.security import Security
from stacks.settings import Stage


class BillingStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.security = Security(self, "Security", stage=stage)
