"""The fuzz tests of the handlers run over moto, as the integration tests do: their `aws`
fixture (the project's tables, the example catalog and accounts pushed)."""

from tests.integration.conftest import aws  # noqa: F401 (a fixture, found by name)
