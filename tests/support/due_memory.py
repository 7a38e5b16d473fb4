"""ListDue's stores in memory (the protocols of billing.invoicing.ports): accounts, invoice
records and due hints, each counting what it is asked for, so unit tests see which
accounts a run reads and what it writes without moto."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from billing.core.catalog import Account
from billing.core.owed import DueHint, due_shard, due_shards
from billing.store.due_hints import HintMove, StoredHint
from billing.store.invoice_store import InvoiceRecord


class MemoryConfig:
    def __init__(self, accounts: Iterable[Account]) -> None:
        self.by_id = {account.id: account for account in accounts}
        self.read: Counter[str] = Counter()  # accounts read, by id

    def account_pages(self) -> Iterator[list[Account]]:
        self.read.update(list(self.by_id))
        yield sorted(self.by_id.values(), key=lambda account: account.id)

    def read_accounts(self, account_ids: Sequence[str]) -> dict[str, Account]:
        self.read.update(account_ids)
        return {a: self.by_id[a] for a in account_ids if a in self.by_id}


class MemoryInvoices:
    def __init__(self, records: Iterable[InvoiceRecord] = ()) -> None:
        self.records = {(r.account_id, r.period): r for r in records}
        self.keys_read = 0

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], InvoiceRecord]:
        self.keys_read += len(keys)
        return {key: self.records[key] for key in keys if key in self.records}

    def since(self, account_id: str, period: str) -> list[InvoiceRecord]:
        mine = [r for (a, p), r in sorted(self.records.items()) if a == account_id and p >= period]
        self.keys_read += len(mine)
        return mine

    def for_account(self, account_id: str) -> list[InvoiceRecord]:
        return self.since(account_id, "0000-01")

    def record_pages(self) -> Iterator[list[InvoiceRecord]]:
        yield list(self.records.values())


class MemoryHints:
    def __init__(self, hints: dict[str, DueHint] | None = None) -> None:
        self.hints = dict(hints or {})
        self.writes: list[tuple[str, str]] = []  # (what, account id)

    def due(self, cutoff: datetime) -> Iterator[list[StoredHint]]:
        for shard in due_shards():
            page = [
                StoredHint(account_id, hint)
                for account_id, hint in sorted(self.hints.items(), key=lambda kv: kv[1].due_at)
                if due_shard(account_id) == shard and hint.due_at <= cutoff
            ]
            if page:
                yield page

    def get_many(self, account_ids: Iterable[str]) -> dict[str, DueHint]:
        return {a: self.hints[a] for a in account_ids if a in self.hints}

    def lower(self, account_id: str, hint: DueHint) -> bool:
        held = self.hints.get(account_id)
        if held is not None and held.due_at <= hint.due_at:
            return False
        self.writes.append(("lower", account_id))
        self.hints[account_id] = hint
        return True

    def replace(self, account_id: str, seen: DueHint | None, hint: DueHint) -> bool:
        if self.hints.get(account_id) != seen:
            return False
        self.writes.append(("replace", account_id))
        self.hints[account_id] = hint
        return True

    def settle(self, moves: Sequence[HintMove]) -> int:
        return sum(
            self.delete(m.account_id, m.seen)
            if m.to is None
            else self.replace(m.account_id, m.seen, m.to)
            for m in moves
        )

    def delete(self, account_id: str, seen: DueHint) -> bool:
        if self.hints.get(account_id) != seen:
            return False
        self.writes.append(("delete", account_id))
        del self.hints[account_id]
        return True
