"""moto's in-process DynamoDB, made cheaper without changing what it answers.

The local runtime's speed (`billing run`, the demo, `invoices_per_second` in
bench/invoicing.py) is mostly moto's: an invoice costs a few DynamoDB writes, and moto
5.2 (pinned) spends most of a write on work it repeats needlessly. Two patches, applied
while `cheaper_dynamodb()` is open (the Lambda bridge opens it):

- Each transaction copies each table once instead of once per item of it
  (`transactions_copy_each_table_once`): moto deep-copies an item's whole table for every
  item, before any of them is applied, so the copies are all equal and a transaction of n
  items on a table of m items cost n·m item copies (seconds for a batch of invoice numbers
  on a table of a few thousand records).
- An update expression is parsed once per distinct text (`update_expressions_parsed_once`):
  the project's writes use a few dozen expression texts, and moto parsed each one anew on
  every call, twice per UpdateItem (a quarter of the invoice run's time). The parsed tree
  is only read: moto's validator works on a deep copy of it (`Validator.__init__`), and
  values are bound there, never in the tree. A text that does not parse raises as before,
  every time (a failure is not kept).
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import SimpleNamespace
from typing import Any
from unittest import mock

import moto.dynamodb.models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]


@contextmanager
def cheaper_dynamodb() -> Iterator[None]:
    """While open, both patches of the module's docstring."""
    with ExitStack() as stack:
        stack.enter_context(transactions_copy_each_table_once())
        stack.enter_context(update_expressions_parsed_once())
        yield


@contextmanager
def update_expressions_parsed_once() -> Iterator[None]:
    """While open, moto parses each distinct update expression text once."""
    parse = UpdateExpressionParser.make

    @functools.lru_cache(maxsize=1024)
    def parsed(expression: str) -> Any:
        return parse(expression)

    with mock.patch.object(UpdateExpressionParser, "make", parsed):
        yield


class _TableCopies(threading.local):
    """The tables already copied by the transaction running on this thread, if any."""

    copies: dict[int, tuple[Table, Table]] | None = None


@contextmanager
def transactions_copy_each_table_once() -> Iterator[None]:
    """While open, moto's TransactWriteItems keeps one backup copy of each table it touches
    (see the module's docstring); what it writes, checks and rolls back is unchanged."""
    current = _TableCopies()
    original = DynamoDBBackend.transact_write_items

    def deepcopy(thing: Any, memo: dict[int, Any] | None = None) -> Any:
        copies = current.copies
        if copies is None or not isinstance(thing, Table):
            return copy.deepcopy(thing, memo)
        if id(thing) not in copies:  # the table is kept with its copy: its id stays its own
            copies[id(thing)] = (thing, copy.deepcopy(thing, memo))
        return copies[id(thing)][1]

    def transact_write_items(backend: DynamoDBBackend, transact_items: list[Any]) -> None:
        current.copies = {}
        try:
            original(backend, transact_items)
        finally:
            current.copies = None

    # moto's models module calls `copy.deepcopy`; only tables, and only in a transaction,
    # are copied differently.
    copying = SimpleNamespace(**{**vars(copy), "deepcopy": deepcopy})
    with (
        mock.patch.object(moto.dynamodb.models, "copy", copying),
        mock.patch.object(DynamoDBBackend, "transact_write_items", transact_write_items),
    ):
        yield
