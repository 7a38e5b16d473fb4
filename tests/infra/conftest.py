"""The synthesized stack, built once per session: cdk-nag runs on every synth, so an
unacknowledged finding fails every infra test. Asset bundling (pip) is skipped here;
test_layer.py bundles for real."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import build_app
from billing.settings import STACK_NAME_PREFIX

NO_BUNDLING = {"aws:cdk:bundling-stacks": []}


def synthesized(**context: Any) -> Template:
    app = build_app({**NO_BUNDLING, **context})
    stage = context.get("stage", "dev")
    stack = app.node.find_child(f"{STACK_NAME_PREFIX}-{stage}")
    assert isinstance(stack, cdk.Stack)
    return Template.from_stack(stack)


@pytest.fixture(scope="session")
def template() -> Template:
    return synthesized()


@pytest.fixture(scope="session")
def resources(template: Template) -> dict[str, Any]:
    found: dict[str, Any] = template.to_json()["Resources"]
    return found


def data_key_arn(template: Template, data_class: str) -> dict[str, Any]:
    """The key of one class of data (Invoice, Usage, State), as resources reference it."""
    keys = template.find_resources("AWS::KMS::Key")
    [key_id] = [name for name in keys if name.startswith(f"Security{data_class}Key")]
    return {"Fn::GetAtt": [key_id, "Arn"]}


@pytest.fixture(scope="session")
def key_arn(template: Template) -> dict[str, Any]:
    """The operational-state key: logs, queues, ledgers, configuration, events."""
    return data_key_arn(template, "State")


@pytest.fixture(scope="session")
def invoice_key_arn(template: Template) -> dict[str, Any]:
    return data_key_arn(template, "Invoice")


@pytest.fixture(scope="session")
def usage_key_arn(template: Template) -> dict[str, Any]:
    return data_key_arn(template, "Usage")


def of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def logical_id(resources: dict[str, Any], kind: str, prefix: str) -> str:
    """The one resource of this type whose logical id starts with this construct path."""
    [name] = [name for name in of_type(resources, kind) if name.startswith(prefix)]
    return name


def role_statements(resources: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    """Every statement of every policy attached to the role."""
    statements: list[dict[str, Any]] = []
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def actions_of(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def resources_of(statement: dict[str, Any]) -> list[Any]:
    found = statement["Resource"]
    return found if isinstance(found, list) else [found]


def path_of(resources: dict[str, Any], resource_id: str) -> str:
    """A method's resource path, from its AWS::ApiGateway::Resource chain."""
    parts = []
    while resource_id in resources:
        props = resources[resource_id]["Properties"]
        parts.append(props["PathPart"])
        parent = props["ParentId"]
        resource_id = parent.get("Ref", "")
    return "/" + "/".join(reversed(parts))
