"""The handlers' settings (billing.settings): read from the environment variables the stack
and the local runtime set, by their exact names, and refused at cold start with a message
that names each missing or bad variable (and never shows a value)."""

from __future__ import annotations

import pytest

from billing.settings import (
    AUTHORIZER_CACHE_ENV,
    CONFIG_TABLE,
    CUSTOMER_KEYS_TABLE,
    EVENT_BUS_ENV,
    GRACE_ENV,
    INVOICE_BUCKET_ENV,
    INVOICE_KEY_ENV,
    INVOICES_TABLE,
    LEDGER_TABLE,
    QUARANTINE_BUCKET_ENV,
    RUN_BUCKET_ENV,
    RUN_CONCURRENCY_ENV,
    SENDER_ENV,
    SES_CONFIGURATION_SET_ENV,
    SES_MAX_SEND_RATE_ENV,
    SPEND_ALERT_THRESHOLDS_ENV,
    STATE_MACHINE_ENV,
    WAREHOUSE_STREAM_ENVS,
    CustomerAuthorizerSettings,
    InvoicingSettings,
    RatingSettings,
    SettingsError,
    SpendAlertSettings,
    StarterSettings,
    WarehouseFeedSettings,
)
from stacks.warehouse_feed import FED_TABLES

INVOICING = {
    LEDGER_TABLE.env_var: "ledger",
    CONFIG_TABLE.env_var: "config",
    INVOICES_TABLE.env_var: "invoices",
    INVOICE_BUCKET_ENV: "invoice-bucket",
    EVENT_BUS_ENV: "bus",
    SENDER_ENV: "invoices@billing.example",
    RUN_BUCKET_ENV: "run-bucket",
}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment with none of the project's variables, whatever the shell had."""
    for name in [*INVOICING, QUARANTINE_BUCKET_ENV, GRACE_ENV, INVOICE_KEY_ENV]:
        monkeypatch.delenv(name, raising=False)
    for name in (
        SES_CONFIGURATION_SET_ENV,
        SPEND_ALERT_THRESHOLDS_ENV,
        STATE_MACHINE_ENV,
        RUN_CONCURRENCY_ENV,
    ):
        monkeypatch.delenv(name, raising=False)
    for name in (SES_MAX_SEND_RATE_ENV, RUN_CONCURRENCY_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def set_all(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_the_settings_are_read_from_the_variables_by_their_exact_names(
    environment: pytest.MonkeyPatch,
) -> None:
    # GIVEN the invoice functions' variables, as the stack sets them, and the grace time
    set_all(
        environment,
        {**INVOICING, GRACE_ENV: "7200", INVOICE_KEY_ENV: "arn:key", RUN_CONCURRENCY_ENV: "40"},
    )

    # WHEN the settings are read
    settings = InvoicingSettings.read()

    # THEN each comes from its variable; the unset optional ones are None
    assert settings.model_dump() == {
        "ledger_table": "ledger",
        "config_table": "config",
        "invoices_table": "invoices",
        "invoice_bucket": "invoice-bucket",
        "invoice_kms_key_id": "arn:key",
        "event_bus_name": "bus",
        "sender_email": "invoices@billing.example",
        "seller": None,
        "ses_configuration_set": None,
        "grace_seconds": 7200,
        "run_bucket": "run-bucket",
        "run_concurrency": 40,
        "ses_max_send_rate": None,
    }


def test_the_email_pace_settings_are_read_when_the_stack_sets_them(
    environment: pytest.MonkeyPatch,
) -> None:
    # GIVEN a configured send rate (the stack sets it only when configured) and concurrency
    set_all(environment, {**INVOICING, SES_MAX_SEND_RATE_ENV: "14", RUN_CONCURRENCY_ENV: "40"})

    settings = InvoicingSettings.read()

    assert (settings.ses_max_send_rate, settings.run_concurrency) == (14.0, 40)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        (SES_MAX_SEND_RATE_ENV, "fast", "SES_MAX_SEND_RATE: not a number"),
        (SES_MAX_SEND_RATE_ENV, "0", "SES_MAX_SEND_RATE: must be more than 0"),
        (RUN_CONCURRENCY_ENV, "0", "INVOICE_RUN_CONCURRENCY: must be more than 0"),
        (RUN_CONCURRENCY_ENV, "ten", "INVOICE_RUN_CONCURRENCY: not an integer"),
    ],
)
def test_an_email_pace_setting_that_cannot_pace_is_named(
    environment: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    set_all(environment, {**INVOICING, name: value})

    with pytest.raises(SettingsError) as raised:
        InvoicingSettings.read()

    assert str(raised.value) == f"this function's environment: {problem}"


def test_a_missing_variable_is_named(environment: pytest.MonkeyPatch) -> None:
    # GIVEN the rater's environment without its ledger table
    set_all(environment, {CONFIG_TABLE.env_var: "config", QUARANTINE_BUCKET_ENV: "q"})

    # WHEN its settings are read THEN the function stops, naming the variable
    with pytest.raises(SettingsError) as raised:
        RatingSettings.read()
    assert str(raised.value) == "this function's environment: LEDGER_TABLE is missing"


def test_every_missing_variable_is_named_at_once(environment: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError) as raised:
        RatingSettings.read()
    assert str(raised.value) == (
        "this function's environment: LEDGER_TABLE is missing; CONFIG_TABLE is missing; "
        "QUARANTINE_BUCKET is missing"
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("an hour", "INVOICE_GRACE_SECONDS: not an integer"),
        ("1.5", "INVOICE_GRACE_SECONDS: not an integer"),
        ("-60", "INVOICE_GRACE_SECONDS: must be 0 or more"),
    ],
)
def test_a_grace_time_that_is_not_a_whole_number_of_seconds_is_named(
    environment: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    set_all(environment, {**INVOICING, GRACE_ENV: value})

    with pytest.raises(SettingsError) as raised:
        InvoicingSettings.read()

    assert str(raised.value) == f"this function's environment: {problem}"
    assert value not in str(raised.value).removeprefix("this function's environment: ")


def test_an_empty_required_variable_is_named_as_empty(environment: pytest.MonkeyPatch) -> None:
    set_all(environment, {**INVOICING, SENDER_ENV: ""})

    with pytest.raises(
        SettingsError, match=r"^this function's environment: SENDER_EMAIL is empty$"
    ):
        InvoicingSettings.read()


def test_an_empty_optional_variable_counts_as_unset(environment: pytest.MonkeyPatch) -> None:
    # GIVEN optional variables the stack sets to "" when their feature is off
    set_all(
        environment,
        {**INVOICING, SES_CONFIGURATION_SET_ENV: "", GRACE_ENV: "", INVOICE_KEY_ENV: ""},
    )

    settings = InvoicingSettings.read()

    assert (settings.ses_configuration_set, settings.grace_seconds) == (None, None)
    assert settings.invoice_kms_key_id is None


def test_a_variable_spelled_in_another_case_is_not_read(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("invoice_run_state_machine_arn", "arn:states")

    with pytest.raises(SettingsError, match="INVOICE_RUN_STATE_MACHINE_ARN is missing"):
        StarterSettings.read()


def test_spend_alerts_run_without_thresholds(environment: pytest.MonkeyPatch) -> None:
    set_all(
        environment,
        {
            LEDGER_TABLE.env_var: "ledger",
            CONFIG_TABLE.env_var: "config",
            EVENT_BUS_ENV: "bus",
            SENDER_ENV: "alerts@billing.example",
            SPEND_ALERT_THRESHOLDS_ENV: "",
        },
    )

    assert SpendAlertSettings.read().spend_alert_thresholds is None


@pytest.mark.parametrize("value", ["0", "10001", "ten"])
def test_a_run_concurrency_out_of_the_distributed_maps_range_is_refused(
    environment: pytest.MonkeyPatch, value: str
) -> None:
    set_all(environment, {**INVOICING, RUN_CONCURRENCY_ENV: value})
    with pytest.raises(SettingsError, match=RUN_CONCURRENCY_ENV):
        InvoicingSettings.read()


@pytest.mark.parametrize(
    ("cache", "read", "problem"),
    [
        (None, 60, None),  # the default: a minute, the most allowed
        ("0", 0, None),
        ("15", 15, None),
        ("61", None, "AUTHORIZER_CACHE_SECONDS: must be 60 or less"),
        ("-1", None, "AUTHORIZER_CACHE_SECONDS: must be 0 or more"),
        ("a minute", None, "AUTHORIZER_CACHE_SECONDS: not an integer"),
    ],
)
def test_the_customer_authorizers_cache_time_is_a_minute_at_most(
    monkeypatch: pytest.MonkeyPatch, cache: str | None, read: int | None, problem: str | None
) -> None:
    monkeypatch.setenv(CUSTOMER_KEYS_TABLE.env_var, "keys")
    if cache is None:
        monkeypatch.delenv(AUTHORIZER_CACHE_ENV, raising=False)
    else:
        monkeypatch.setenv(AUTHORIZER_CACHE_ENV, cache)
    if problem is None:
        settings = CustomerAuthorizerSettings.read()
        assert (settings.customer_keys_table, settings.authorizer_cache_seconds) == ("keys", read)
        return
    with pytest.raises(SettingsError) as refused:
        CustomerAuthorizerSettings.read()
    assert str(refused.value) == f"this function's environment: {problem}"


def test_the_warehouse_feed_reads_one_delivery_stream_per_fed_table(
    environment: pytest.MonkeyPatch,
) -> None:
    # GIVEN the stack's variables for warehouse_rows, each stream named after its table
    set_all(
        environment,
        {
            LEDGER_TABLE.env_var: "ledger",
            CONFIG_TABLE.env_var: "config",
            INVOICE_BUCKET_ENV: "invoice-bucket",
            QUARANTINE_BUCKET_ENV: "quarantine-bucket",
            **{env: f"stream-{table}" for table, env in WAREHOUSE_STREAM_ENVS.items()},
        },
    )
    # THEN each of the six tables the feed writes has its stream
    assert WarehouseFeedSettings().streams() == {
        "invoices": "stream-invoices",
        "invoice_lines": "stream-invoice_lines",
        "corrections": "stream-corrections",
        "correction_lines": "stream-correction_lines",
        "daily_usage": "stream-daily_usage",
        "rejected_records": "stream-rejected_records",
    }
    assert set(WAREHOUSE_STREAM_ENVS) == {t.name for t in FED_TABLES}
