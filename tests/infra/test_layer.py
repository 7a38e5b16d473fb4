"""The one test that really bundles the layer: pip from PyPI, wheels for Lambda's arm64
Python 3.12, the billing package in, the command line out."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from app import build_app
from billing.fonts import verify
from billing.settings import STACK_NAME_PREFIX
from stacks.layer import LAYER_PYTHON_DIR
from stacks.settings import LAYER_SOURCE


def test_layer_is_bundled_for_arm64_python_3_12_without_the_command_line(tmp_path: Path) -> None:
    # GIVEN the app with bundling on, as `cdk synth` runs it
    app = build_app({"aws:cdk:enable-asset-metadata": True}, outdir=str(tmp_path))
    stack = app.node.find_child(f"{STACK_NAME_PREFIX}-dev")
    assert isinstance(stack, cdk.Stack)

    # WHEN it is synthesized
    assembly = app.synth()

    # THEN the layer's asset holds pydantic-core built for aarch64 and CPython 3.12
    template: dict[str, Any] = assembly.get_stack_by_name(stack.stack_name).template
    [layer] = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::LayerVersion"
    ]
    asset = Path(assembly.directory) / layer["Metadata"]["aws:asset:path"]
    site_packages = asset / LAYER_PYTHON_DIR
    native = sorted(p.name for p in (site_packages / "pydantic_core").glob("_pydantic_core*.so"))
    assert native == ["_pydantic_core.cpython-312-aarch64-linux-gnu.so"]
    # the billing package, with its workflow definition
    assert (site_packages / "billing" / "rating" / "rater.py").is_file()
    assert (site_packages / "billing" / "invoicing" / "invoice_run.asl.json").is_file()
    # and nothing only the command line uses
    assert not (site_packages / "billing" / "pipeline.py").exists()
    assert not (site_packages / "billing_cli").exists()
    # its pinned requirements
    assert (site_packages / "aws_lambda_powertools").is_dir()
    assert (site_packages / "fpdf").is_dir()
    assert (site_packages / "babel").is_dir()
    # HarfBuzz, for shaping Arabic, Hebrew and Devanagari, built for aarch64
    [shaping] = (site_packages / "uharfbuzz").glob("_harfbuzz.*so")
    assert shaping.read_bytes()[18:20] == AARCH64_ELF_MACHINE, shaping
    # the invoice fonts, exactly as vendored
    verify(site_packages / "billing" / "fonts")
    assert (site_packages / "billing" / "fonts" / "OFL.txt").is_file()
    # and never the command line, the handlers, nor caches
    assert not list(asset.rglob("billing_cli"))
    assert not (site_packages / "functions").exists()
    assert not list((site_packages / "billing").rglob("__pycache__"))
    # every distribution in it is the one the lock pins (with hashes), and nothing more
    assert installed_distributions(site_packages) == locked(LAYER_SOURCE / "requirements.lock")


def test_the_tests_run_the_versions_the_layer_ships() -> None:
    # GIVEN what the layer's lock pins, and what this environment runs
    layer = locked(LAYER_SOURCE / "requirements.lock")
    dev = locked(LAYER_SOURCE.parent.parent / "requirements" / "dev.lock")
    running = {canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    # THEN every distribution of the layer is locked, and installed, at the same version
    for name, version in layer.items():
        assert dev.get(name) == version, name
        assert running.get(name) == version, name


def test_every_requirement_of_the_layer_is_in_its_lock() -> None:
    lock = locked(LAYER_SOURCE / "requirements.lock")
    for line in (LAYER_SOURCE / "requirements.txt").read_text(encoding="utf-8").splitlines():
        pin = line.split("#", 1)[0].strip()
        if pin:
            requirement, version = pin.split("==")
            assert lock[canonical(requirement.split("[", 1)[0])] == version, pin


# An ELF file's e_machine field (little-endian) for AArch64: uharfbuzz's module is named
# for the stable ABI (abi3), not the architecture, so its header is what says.
AARCH64_ELF_MACHINE = (183).to_bytes(2, "little")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions(site_packages: Path) -> dict[str, str]:
    found = {}
    for info in site_packages.glob("*.dist-info"):
        metadata = (info / "METADATA").read_text(encoding="utf-8")
        name = re.search(r"^Name: (.+)$", metadata, re.M)
        version = re.search(r"^Version: (.+)$", metadata, re.M)
        assert name, info
        assert version, info
        found[canonical(name.group(1).strip())] = version.group(1).strip()
    return found


def locked(lock: Path) -> dict[str, str]:
    """The pins of a lock file (uv pip compile --generate-hashes): name==version lines."""
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^]]*\])?==([^ ;\\]+)", line)
        if match:
            pins[canonical(match.group(1))] = match.group(3)
    return pins
