"""Shared fixtures. Each suite's marker comes from its folder (tests/unit -> unit, ...)."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing.core.catalog import Accounts, Catalog, load_accounts, load_catalog

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SUITES = ("unit", "integration", "infra", "e2e", "fuzz")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        suite = Path(item.fspath).relative_to(ROOT / "tests").parts[0]
        if suite in SUITES:
            item.add_marker(getattr(pytest.mark, suite))


@pytest.fixture(scope="session")
def example_catalog() -> Catalog:
    return load_catalog(EXAMPLES / "catalog.yaml")


@pytest.fixture(scope="session")
def example_accounts(example_catalog: Catalog) -> Accounts:
    return load_accounts(EXAMPLES / "accounts.yaml", example_catalog)
