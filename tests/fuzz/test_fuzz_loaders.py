"""The catalog and accounts loaders fuzzed (docs/fuzzing.md), as `billing run`,
`billing catalog push` and `billing accounts push` call them on a file and the operator API
on a JSON body: whatever the document, `load_catalog`/`parse_catalog` and
`load_accounts`/`parse_accounts` return a cross-checked value or raise `CatalogError`
naming the entry and the field (never another exception); and `check_push`, on any valid
push over the stored accounts, accepts it or refuses it with `HistoryRewrite`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pytest
import yaml
from hypothesis import event, example, given
from hypothesis import strategies as st

from billing.core.catalog import (
    Accounts,
    Catalog,
    CatalogError,
    load_accounts,
    load_catalog,
    parse_accounts,
    parse_catalog,
)
from billing.core.history import HistoryRewrite, check_push
from tests.conftest import EXAMPLES
from tests.fuzz.fuzz_inputs import deep, dumps, fuzz_settings, mostly, mutated, spelt

CATALOG_TEXT: Final = (EXAMPLES / "catalog.yaml").read_text()
CATALOG_DOCUMENT: Final[dict[str, Any]] = yaml.safe_load(CATALOG_TEXT)
CATALOG: Final = parse_catalog(CATALOG_DOCUMENT)
ACCOUNTS_TEXT: Final = (EXAMPLES / "accounts.yaml").read_text()
# Every field an account may have: the examples' and the subscriptions' accounts together.
ACCOUNTS_DOCUMENT: Final[dict[str, Any]] = {
    "accounts": [
        *yaml.safe_load(ACCOUNTS_TEXT)["accounts"],
        *yaml.safe_load((EXAMPLES / "subscriptions" / "accounts.yaml").read_text())["accounts"],
    ]
}
STORED: Final = parse_accounts(ACCOUNTS_DOCUMENT, CATALOG)

# Values at the edges of what the fields take: dates and periods at the ends of the
# calendar, zones far from UTC, amounts with many digits.
EDGE_VALUES: Final = [
    "0001-01-01",
    "0001-01-02",
    "9999-12-31",
    "9999-12-30",
    "2026-02-29",
    "2024-02-29",
    "0001-01",
    "9999-12",
    "2026-13",
    "Pacific/Kiritimati",
    "Etc/GMT+12",
    "UTC",
    "utc",
    "Europe/../UTC",
    "/etc/localtime",
    "0.000000000000000000000000000001",
    "1E+30",
    "1e-7",
    "99999999999999999999999999999999",
    "-0",
    "0",
    "100",
    "101",
    "nan",
    "Infinity",
]
edge_values = st.sampled_from(EDGE_VALUES)


def assert_refused_clearly(error: CatalogError, document: Any) -> None:
    """A refusal names what to mend: the entry or the field when the document is a mapping
    (a document that is not one is refused as a whole), in one readable message."""
    assert error.reason, error
    assert "Traceback" not in str(error), error
    if isinstance(document, dict):
        assert error.entry or error.field, (str(error), document)
    named = error.field.split(".")[-1].split("[")[0]
    event(f"refused: {named if named.isidentifier() and named.isascii() else 'other field'}")


def parsed_catalog(document: Any) -> Catalog | None:
    try:
        catalog = parse_catalog(document)
    except CatalogError as error:
        assert_refused_clearly(error, document)
        return None
    event("valid catalog")
    return catalog


def parsed_accounts(document: Any) -> Accounts | None:
    try:
        accounts = parse_accounts(document, CATALOG)
    except CatalogError as error:
        assert_refused_clearly(error, document)
        return None
    event("valid accounts")
    return accounts


@example({"meters": deep(400), "plans": []})
@example({"meters": [], "plans": [], "meters\u200b": []})
@example({**CATALOG_DOCUMENT, "plans": [{**CATALOG_DOCUMENT["plans"][0], "currency": "XTS"}]})
@given(mutated(CATALOG_DOCUMENT))
@fuzz_settings()
def test_a_catalog_mutated_field_by_field_is_valid_or_refused_by_field(document: Any) -> None:
    parsed_catalog(document)


@example({"accounts": [{**ACCOUNTS_DOCUMENT["accounts"][0], "start": "0001-01-01", "end": None}]})
@example({"accounts": [{**ACCOUNTS_DOCUMENT["accounts"][0], "timezone": "Etc/GMT-14"}]})
@example(
    {
        "accounts": [
            {
                **ACCOUNTS_DOCUMENT["accounts"][6],
                "changes": [{"effective": "9999-12-31", "plan": "pro"}],
            }
        ]
    }
)
@given(mutated(ACCOUNTS_DOCUMENT))
@fuzz_settings()
def test_accounts_mutated_field_by_field_are_valid_or_refused_by_field(document: Any) -> None:
    parsed_accounts(document)


@st.composite
def accounts_with_edges(draw: st.DrawFn) -> Any:
    """One account of the examples with one or two of its fields set to an edge value."""
    account = dict(draw(st.sampled_from(ACCOUNTS_DOCUMENT["accounts"])))
    fields = ["start", "end", "timezone", "tax_rate", "changes", "discounts", "credits"]
    for name in draw(st.lists(st.sampled_from(fields), min_size=1, max_size=2, unique=True)):
        value = draw(edge_values)
        if name == "changes":
            account[name] = [{"effective": value, "plan": draw(st.sampled_from(["pro", "team"]))}]
        elif name == "discounts":
            account[name] = [{"id": "d", "percent": "10", "from": value, "periods": 3}]
        elif name == "credits":
            account[name] = [{"id": "c", "amount": "1.00", "granted": value, "expires": value}]
        else:
            account[name] = value
    return {"accounts": [account]}


# The instants a push is judged at: around the examples' November, and at the calendar's ends.
instants = mostly(
    st.datetimes(
        min_value=datetime(2026, 9, 1), max_value=datetime(2027, 3, 1), timezones=st.just(UTC)
    ),
    st.sampled_from([datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC)]),
)


@given(st.one_of(mutated(ACCOUNTS_DOCUMENT), accounts_with_edges()), instants)
@fuzz_settings()
def test_a_valid_push_is_taken_or_refused_as_a_history_rewrite(
    document: Any, now: datetime
) -> None:
    pushed = parsed_accounts(document)
    if pushed is None:
        return
    try:
        check_push(STORED, pushed, now)
    except HistoryRewrite as refused:
        rewrite: HistoryRewrite | None = refused
    else:
        rewrite = None
    if rewrite is not None:  # it names the account it refuses
        assert str(rewrite).startswith("accounts["), rewrite
        event("history rewrite")


# --- files, as `billing run` and the pushes read them --------------------------------------

YAML_TRICKS: Final = [
    "\ufeff",  # a byte-order mark before the document
    "%YAML 1.1\n---\n",
    "--- !!python/object:os.system\n",
    "a: &x [1]\nb: *x\n",
    "? [complex, key]\n: value\n",
    "meters: []\nmeters: []\n",  # a key given twice
    "\t",
    "...\n---\n",
    "!!binary aGk=\n",
    "2026-11-05: date key\n",
    "x: 1_000\n",
    "x: 0o17\n",
    "x: .inf\n",
    "x: .NaN\n",
    "x: !!float 1e400\n",
    "x: ~\n",
    "x: 2026-11-05T14:30:00Z\n",
    "x: 'unterminated\n",
]


@st.composite
def yaml_texts(draw: st.DrawFn, text: str) -> bytes:
    """`text` with a trick inserted at a line, lines dropped or repeated, or cut short;
    written as UTF-8, or in another encoding."""
    lines = text.splitlines(keepends=True)
    at = draw(st.integers(0, len(lines)))
    action = draw(st.sampled_from(["insert", "drop", "repeat", "cut", "indent"]))
    if action == "insert":
        lines.insert(at, draw(st.sampled_from(YAML_TRICKS)))
    elif action == "drop" and at < len(lines):
        del lines[at]
    elif action == "repeat" and at < len(lines):
        lines.insert(at, lines[at])
    elif action == "indent" and at < len(lines):
        lines[at] = "  " + lines[at]
    elif action == "cut":
        lines = lines[:at]
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16", "latin-1"]))
    return "".join(lines).encode(encoding, "replace")


def load_file(tmp_path: Path, name: str, content: bytes, accounts: bool) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    try:
        if accounts:
            load_accounts(path, CATALOG)
        else:
            load_catalog(path)
    except CatalogError as error:
        refused: CatalogError | None = error
    else:
        refused = None
    if refused is None:
        event("loaded")
        return
    assert refused.source == str(path), refused  # the file, named
    assert refused.reason, refused
    assert "Traceback" not in str(refused), refused
    event("refused")


@example(content=b"\xef\xbb\xbf" + CATALOG_TEXT.encode(), name="catalog.yaml")
@example(content=b"a: &a [*a, *a]\n", name="catalog.yaml")
@example(content=b"[" * 10_000, name="catalog.json")
@example(content=b'{"meters": [], "plans": [], "plans": []}', name="catalog.json")
@example(content=b"NaN", name="catalog.json")
@given(
    content=st.one_of(
        yaml_texts(CATALOG_TEXT),
        mutated(CATALOG_DOCUMENT).flatmap(spelt),  # JSON is YAML too
        st.binary(max_size=512),
    ),
    name=st.sampled_from(["catalog.yaml", "catalog.json"]),
)
@fuzz_settings(scale=0.5)
def test_any_catalog_file_loads_or_is_refused_naming_the_file(
    tmp_path: Path, content: bytes, name: str
) -> None:
    load_file(tmp_path, name, content, accounts=False)


@given(
    content=st.one_of(
        yaml_texts(ACCOUNTS_TEXT),
        mutated(ACCOUNTS_DOCUMENT).map(lambda d: dumps(d).encode()),
        st.binary(max_size=512),
    ),
    name=st.sampled_from(["accounts.yaml", "accounts.json"]),
)
@fuzz_settings(scale=0.5)
def test_any_accounts_file_loads_or_is_refused_naming_the_file(
    tmp_path: Path, content: bytes, name: str
) -> None:
    load_file(tmp_path, name, content, accounts=True)


@pytest.mark.parametrize("name", ["catalog.yaml", "catalog.json"])
def test_the_example_catalog_loads_as_yaml_and_as_json(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(CATALOG_TEXT if name.endswith("yaml") else dumps(CATALOG_DOCUMENT))
    assert load_catalog(path) == CATALOG
