"""The Lambda layer: the `billing` package and its pinned runtime requirements, built for
the functions' runtime and architecture on this machine, without Docker."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling, aws_lambda
from constructs import Construct

from billing import fonts
from stacks.settings import (
    ARCHITECTURE,
    LAYER_PLATFORM,
    LAYER_PYTHON_VERSION,
    LAYER_SOURCE,
    RUNTIME,
)

# Lambda puts a layer's python/ folder on sys.path.
LAYER_PYTHON_DIR = "python"
# What never belongs in the asset: caches and build leftovers.
_NOT_SHIPPED = ("__pycache__", "*.pyc", "*.egg-info")


def pip_install_command(target: Path, source: Path) -> list[str]:
    """pip downloads wheels built for the functions' platform and Python, never sources to
    build here (a source build would target this machine, not Lambda's): exactly the
    distributions and versions of requirements.lock, each checked against its hashes."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--platform",
        LAYER_PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        LAYER_PYTHON_VERSION,
        "--only-binary=:all:",
        "--target",
        str(target),
        "--require-hashes",
        "--no-deps",
        "--requirement",
        str(source / "requirements.lock"),
    ]


@jsii.implements(ILocalBundling)
class LocalPipBundling:
    """Builds the layer with this machine's pip. It never declines: a failure stops the
    synth with pip's message rather than falling back to Docker."""

    def __init__(self, source: Path) -> None:
        self._source = source

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        site_packages = Path(output_dir) / LAYER_PYTHON_DIR
        command = pip_install_command(site_packages, self._source)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"bundling the billing layer failed (pip exit {result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        # The `billing` package itself, as source; the command line (billing_cli) lives
        # elsewhere and is never copied.
        shutil.copytree(
            self._source / "billing",
            site_packages / "billing",
            ignore=shutil.ignore_patterns(*_NOT_SHIPPED),
        )
        # The invoice fonts travel inside the package; a changed or missing one stops here.
        fonts.verify(site_packages / "billing" / "fonts")
        return True


class BillingLayer(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.layer = aws_lambda.LayerVersion(
            self,
            "Layer",
            description="The billing package and its pinned runtime requirements",
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            code=aws_lambda.Code.from_asset(
                str(LAYER_SOURCE),
                exclude=list(_NOT_SHIPPED),
                # The source (the package and its pinned requirements) decides the hash, so
                # an unchanged layer is not rebuilt nor uploaded again.
                asset_hash_type=AssetHashType.SOURCE,
                bundling=BundlingOptions(
                    # Docker is never used (LocalPipBundling never declines); CDK requires
                    # an image all the same.
                    image=RUNTIME.bundling_image,
                    local=LocalPipBundling(LAYER_SOURCE),
                ),
            ),
        )
