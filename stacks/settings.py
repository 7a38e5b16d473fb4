"""What every construct shares, in one place: runtime, architecture, names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aws_cdk import aws_lambda

RUNTIME: Final = aws_lambda.Runtime.PYTHON_3_12
ARCHITECTURE: Final = aws_lambda.Architecture.ARM_64


@dataclass(frozen=True)
class Stage:
    """Settings that differ between deployments, read from CDK context (`-c stage=prod`)."""

    name: str = "dev"

    @property
    def is_production(self) -> bool:
        return self.name == "prod"
