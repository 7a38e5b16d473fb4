"""The customer portal in a real browser (Debian's chromium, driven by Playwright), against
`billing local`'s served runtime: a portal link made with `billing portal-link` opens the
page, which shows the account's exact running charge and invoice preview, follows new
usage without a reload, downloads the stored PDF byte for byte, lists an adjustment
invoice and a credit note of the invoice with their PDFs, sets spend alerts, and shows
nothing of another account.

The world, by hand (plan `web`: fixed fee 10.00, api_calls 0.05 each; tax 10%; a 10%
discount on December's invoice only; a prepaid grant of 20.00):

- November: 100 calls → 5.00 + 10.00 = 15.00; tax 1.50; total 16.50, all paid by the grant
  (3.50 left). Issued on the test clock (3 December), as INV-… with its PDF.
- December so far: 40 calls on the 1st, 20 on the 2nd → 60 × 0.05 = 3.00 + 10.00 = 13.00;
  discount −1.30 → 11.70; tax 1.17; total 12.87; the grant's 3.50 → 9.37 due.
- Then 100 calls on the 3rd → 160 × 0.05 = 8.00 + 10.00 = 18.00; −1.80 → 16.20; tax 1.62;
  total 17.82; 3.50 → 14.32 due.
- Late: 10 November calls after its invoice → an adjustment invoice of 0.55 (then the
  invoice voided: a credit note of 16.50 + 0.55 = 17.05), by the one test that corrects it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Response, expect, sync_playwright
from typer.testing import CliRunner

from billing.core.catalog import parse_accounts, parse_catalog
from billing.customer.gateway_answers import portal_page_hash
from billing_cli.local.esm import MappingSettings, ShardPoller
from billing_cli.local.runtime import INVOICE_BUCKET, LocalAws, local_aws
from billing_cli.main import app

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
DOCS = Path(__file__).resolve().parents[2] / "docs"
# How long the page may take to show what the API answers: it refreshes every 3 seconds.
SHOWN_WITHIN_MS = 15_000

CATALOG = {
    "meters": [
        {"name": "api_calls", "unit": "call", "aggregation": "sum", "description": "API calls"}
    ],
    "plans": [
        {
            "id": "web",
            "name": "Web",
            "currency": "USD",
            "fixed_fee": "10.00",
            "charges": [{"meter": "api_calls", "model": "per_unit", "unit_price": "0.05"}],
        },
        {
            "id": "web-eur",
            "name": "Web EUR",
            "currency": "EUR",
            "fixed_fee": "7.00",
            "charges": [{"meter": "api_calls", "model": "per_unit", "unit_price": "0.04"}],
        },
    ],
}
ACCOUNTS = {
    "accounts": [
        {
            "id": "acct-1",
            "name": "Acme Portal Co",
            "email": "billing@acme.example",
            "plan": "web",
            "timezone": "UTC",
            "tax_rate": "0.10",
            "start": "2026-10-01",
            "discounts": [{"id": "welcome", "percent": "10", "from": "2026-12", "periods": 1}],
            "credits": [{"id": "prepay-1", "amount": "20.00", "granted": "2026-10-01"}],
        },
        {
            "id": "acct-2",
            "name": "Bravo Secret GmbH",
            "email": "ap@bravo.example",
            "plan": "web-eur",
            "timezone": "Europe/Berlin",
            "start": "2026-10-01",
        },
    ]
}


def event(event_id: str, account: str, quantity: int, at: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "account_id": account,
        "meter": "api_calls",
        "quantity": quantity,
        "timestamp": at,
    }


class World:
    def __init__(self, aws: LocalAws, poller: ShardPoller, folder: Path) -> None:
        self.aws, self.poller, self.folder = aws, poller, folder

    def billing(self, *args: str) -> str:
        assert self.aws.endpoint_url is not None
        result = CliRunner().invoke(app, ["--endpoint-url", self.aws.endpoint_url, *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    def send(self, name: str, *events: dict[str, Any]) -> None:
        """Events through `billing send` onto the stream, then rated (the mapping's poll)."""
        path = self.folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
        sent = json.loads(self.billing("send", str(path), "--json"))
        assert (sent["sent"], sent["refused"]) == (len(events), [])
        assert self.poller.poll() == len(events)
        assert self.poller.log.errors == 0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with local_aws(server_port=0, customer_api_port=0, clock=NOW) as aws:
        catalog = parse_catalog(CATALOG)
        aws.load(catalog, parse_accounts(ACCOUNTS, catalog), now=NOW)
        (poller,) = aws.pollers(MappingSettings(batch_size=1000))
        world = World(aws, poller, tmp_path_factory.mktemp("portal"))
        world.send(
            "november",
            event("n1", "acct-1", 100, "2026-11-10T08:00:00Z"),
            event("b1", "acct-2", 5000, "2026-11-12T08:00:00Z"),
        )
        run = json.loads(world.billing("invoices", "run", "--period", "2026-11", "--json"))
        assert (run["status"], run["report"]["issued"]) == ("SUCCEEDED", 2)
        world.send(
            "december",
            event("d1", "acct-1", 40, "2026-12-01T10:00:00Z"),
            event("d2", "acct-1", 20, "2026-12-02T11:00:00Z"),
            event("b2", "acct-2", 7777, "2026-12-02T11:00:00Z"),
        )
        yield world


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert shutil.which(CHROMIUM), "make test installs Debian's chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        locale="en-US",
        timezone_id="UTC",
        accept_downloads=True,
        viewport={"width": 900, "height": 1600},
    )
    yield context.new_page()
    context.close()


def portal_link(world: World) -> str:
    made = json.loads(world.billing("portal-link", "acct-1", "--json"))
    link: str = made["link"]
    assert world.aws.customer_api is not None
    assert link.startswith(f"{world.aws.customer_api.url}portal#account=acct-1&token=bk_")
    return link


def keep_screenshot(page: Page) -> None:
    """With PORTAL_SCREENSHOT set (`make portal-screenshot`): the page as it is now, there,
    and beside it the hash of the page it is of (checked by tests/unit/test_portal_page.py)."""
    target = os.environ.get("PORTAL_SCREENSHOT")
    if target:
        page.screenshot(path=target, full_page=True)
        Path(target).with_suffix(".sha256").write_text(portal_page_hash() + "\n")


def recorded_answers(page: Page) -> list[Response]:
    """Every answer the page gets from now on."""
    answers: list[Response] = []

    def record(answer: Response) -> None:  # a function: Playwright takes no bound builtin
        answers.append(answer)

    page.on("response", record)
    return answers


def texts(page: Page, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def test_the_portal_shows_the_exact_charge_follows_usage_and_downloads_the_stored_pdf(
    world: World, page: Page
) -> None:
    answers = recorded_answers(page)
    link = portal_link(world)

    page.goto(link)

    # the credential leaves the address bar (and so the history) before anything is asked
    expect(page.locator("h1")).to_have_text("Acme Portal Co")
    assert page.url == link.partition("#")[0]
    entries = page.evaluate("history.length")  # the blank page the browser opened, and this
    # the running charge and the preview, to the cent, as the usage report has them
    expect(page.locator("#running-charge")).to_have_text("$12.87", timeout=SHOWN_WITHIN_MS)
    expect(page.locator("#amount-due")).to_have_text("$9.37")
    usage = json.loads(world.billing("usage", "acct-1", "--json"))
    assert usage["invoice_preview"]["total"] == "12.87"
    assert usage["invoice_preview"]["amount_due"] == "9.37"
    assert texts(page, "#preview tbody tr") == [
        "API calls\t60\t$3.00",
        "Web plan\t\t$10.00",
        "Discount welcome (10%)\t\t-$1.30",
    ]
    assert texts(page, "#preview tfoot tr") == [
        "Subtotal\t\t$11.70",
        "Tax\t\t$1.17",
        "Total\t\t$12.87",
        "Paid with prepaid credits\t\t-$3.50",
        "Amount due\t\t$9.37",
    ]
    assert texts(page, "#meters tbody tr") == ["API calls\t60\tcall\t$3.00"]
    assert texts(page, "#credits tbody tr") == ["prepay-1\tnever\t$3.50\t$3.50"]
    bars = page.locator("#daily-charts rect")
    assert bars.evaluate_all("rs => rs.map(r => [r.dataset.date, r.dataset.quantity])") == [
        ["2026-12-01", "40"],
        ["2026-12-02", "20"],
        ["2026-12-03", "0"],
    ]
    assert texts(page, "#daily-charts .note") == ["Largest day: 40 on Dec 1."]
    expect(page.locator("#period-line")).to_have_text("open, still counting")
    assert texts(page, "#period option") == ["December 2026 (current)", "November 2026"]

    # more usage: the page follows it, without a reload
    world.send("more", event("d3", "acct-1", 100, "2026-12-03T09:00:00Z"))
    expect(page.locator("#running-charge")).to_have_text("$17.82", timeout=SHOWN_WITHIN_MS)
    expect(page.locator("#amount-due")).to_have_text("$14.32")
    expect(page.locator("#meters tbody tr")).to_have_text(["API calls160call$8.00"])
    expect(page.locator("#daily-charts .note")).to_have_text(["Largest day: 100 on Dec 3."])
    assert page.locator("#daily-charts rect").last.get_attribute("data-quantity") == "100"
    assert page.evaluate("history.length") == entries  # no navigation happened

    # November's invoice: listed with its total, and its PDF is the stored one, byte for byte
    [row] = texts(page, "#invoices tbody tr")
    number, period, total, _ = row.split("\t")
    assert (period, total) == ("2026-11", "$16.50")
    with page.expect_download() as download:
        page.get_by_role("button", name=f"Download the PDF of {number}").click()
    assert download.value.suggested_filename == f"{number}.pdf"
    saved = Path(download.value.path()).read_bytes()
    stored = world.aws.object(INVOICE_BUCKET, f"invoices/acct-1/2026-11/{number}.pdf")
    assert saved.startswith(b"%PDF-")
    assert saved == stored

    shows_november_when_chosen(page)

    # nothing of the other account ever reached the page
    assert "Bravo" not in page.content()
    assert all("acct-2" not in answer.url for answer in answers)
    assert all(answer.status < 400 for answer in answers)
    # and the history's one other entry is the blank page, not the link
    page.go_back()
    assert page.url == "about:blank"


def shows_november_when_chosen(page: Page) -> None:
    # November, chosen: closed, its charge the invoice's, paid by the grant; its days
    page.locator("#period").select_option("2026-11")
    expect(page.locator("#period-line")).to_have_text("closed")
    expect(page.locator("#running-charge")).to_have_text("$16.50")
    expect(page.locator("#amount-due")).to_have_text("$0.00")
    assert texts(page, "#daily-charts .note") == ["Largest day: 100 on Nov 10."]
    assert page.locator("#daily-charts rect").count() == 30  # a closed period: every day
    page.locator("#period").select_option("2026-12")
    expect(page.locator("#running-charge")).to_have_text("$17.82")


def test_spend_alerts_set_in_the_portal_are_the_accounts_own(world: World, page: Page) -> None:
    page.goto(portal_link(world))
    expect(page.locator("#thresholds li")).to_have_text(["No alerts set."])
    form = page.locator("#thresholds-form")

    form.get_by_label("Amount or percentage").fill("25")
    form.get_by_role("button", name="Add").click()
    expect(page.locator("#thresholds li")).to_have_text(["$25.00 Remove"])
    form.get_by_label("at a percentage of a monthly budget").check()
    form.get_by_label("Amount or percentage").fill("50")
    form.get_by_label("Monthly budget", exact=True).fill("40")
    form.get_by_role("button", name="Add").click()
    # 50% of 40.00 is 20.00: listed in ascending amount
    expect(page.locator("#thresholds li")).to_have_text(
        ["50% of the budget ($20.00) Remove", "$25.00 Remove"]
    )
    form.get_by_label("Amount or percentage").fill("0.001")
    form.get_by_role("button", name="Add").click()
    expect(page.locator("#form-error")).to_have_text(
        "thresholds.2.amount: USD amounts have at most 2 digits after the point"
    )

    page.get_by_role("listitem").filter(has_text="$25.00").get_by_role("button").click()
    expect(page.locator("#thresholds li")).to_have_text(["50% of the budget ($20.00) Remove"])


def test_the_portal_shows_nothing_of_another_account_nor_with_a_tampered_link(
    world: World, page: Page
) -> None:
    answers = recorded_answers(page)
    link = portal_link(world)
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Acme Portal Co")

    # the same credential, pointed at acct-2 by hand: refused, and nothing of it shown
    page.evaluate(
        "s => sessionStorage.setItem('billing.portal', JSON.stringify(s))",
        {"account": "acct-2", "token": link.rpartition("token=")[2]},
    )
    page.reload()
    expect(page.locator("#notice")).to_have_text(
        "This link has expired, was revoked or is not for this account: ask for a new one."
    )
    assert "Bravo" not in page.content()
    theirs = [answer for answer in answers if "/accounts/acct-2" in answer.url]
    assert theirs
    assert {answer.status for answer in theirs} == {403}
    assert all(b"Bravo" not in answer.body() and b"7777" not in answer.body() for answer in theirs)

    # a link whose secret was changed: the API refuses it (401), and the page says so
    tampered = link[:-1] + ("A" if link[-1] != "A" else "B")
    fresh = page.context.new_page()  # a tab of its own: its own sessionStorage
    fresh.goto(tampered)
    expect(fresh.locator("#notice")).to_contain_text("has expired, was revoked")
    assert fresh.locator("#running-charge").inner_text() == "–"


def test_the_portal_fits_a_phone(world: World, browser: Browser) -> None:
    context = browser.new_context(
        locale="en-US", timezone_id="UTC", viewport={"width": 360, "height": 740}
    )
    page = context.new_page()
    page.goto(portal_link(world))
    expect(page.locator("#running-charge")).not_to_have_text("–", timeout=SHOWN_WITHIN_MS)
    # nothing wider than the screen: tables scroll inside their own box
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    context.close()


def test_an_adjustment_and_a_credit_note_show_with_their_totals_and_download_their_pdfs(
    world: World, page: Page
) -> None:
    # GIVEN 10 late API calls for acct-1's invoiced November (refused by the rater as
    # PERIOD_CLOSED, kept), charged by a re-rate: 110 × 0.05 = 5.50 + 10.00 = 15.50, 0.50
    # above the invoice's 15.00; tax round(15.50 × 0.10) − 1.50 = 1.55 − 1.50 = 0.05; an
    # adjustment invoice of 0.50 + 0.05 = 0.55
    listed = json.loads(world.billing("invoices", "list", "--account", "acct-1", "--json"))
    [invoice] = listed["invoices"]
    number = invoice["invoice_number"]
    world.send("late", event("n2", "acct-1", 10, "2026-11-20T08:00:00Z"))
    world.aws.firehose().drain()
    rerated = json.loads(
        world.billing(
            "rerate", "--period", "2026-11", "--account", "acct-1",
            "--apply", "--reason", "late usage", "--json",
        )
    )  # fmt: skip
    [applied] = rerated["applied"]
    assert (applied["outcome"], applied["adjustment"]["number"]) == ("adjusted", "ADJ-2026-000001")
    assert applied["adjustment"]["total"] == "0.55"
    adjustment = json.loads(
        world.aws.object(INVOICE_BUCKET, "invoices/acct-1/2026-11/ADJ-2026-000001.json")
    )
    # AND then the invoice voided: the credit note credits what stands, 16.50 + 0.55 = 17.05
    note = json.loads(
        world.billing("invoices", "void", number, "--reason", "billed twice", "--json")
    )
    assert (note["credit_note_number"], note["total"]) == ("CN-2026-000001", "17.05")
    # both issued as the Send function's clock says (not the test clock): their UTC dates
    # are shown
    issued_at = json.loads(world.aws.object(INVOICE_BUCKET, note["json_key"]))["issued_at"]

    # WHEN the portal opens
    page.goto(portal_link(world))

    # THEN the adjustment is listed beside the invoice, with what it charges on top
    expect(page.locator("#adjustments tbody tr")).to_have_count(1, timeout=SHOWN_WITHIN_MS)
    assert texts(page, "#adjustments tbody tr") == [
        f"ADJ-2026-000001\t{number}\t{adjustment['issued_at'][:10]}\t"
        f"{adjustment['correction']}\t$0.55\tDownload"
    ]
    assert page.locator("#adjustments td.num").get_attribute("data-amount") == "0.55"
    # AND the credit note: all 17.05 that stood credited
    expect(page.locator("#credit-notes tbody tr")).to_have_count(1)
    assert texts(page, "#credit-notes tbody tr") == [
        f"CN-2026-000001\t{number}\t{issued_at[:10]}\tvoid\t$17.05\tDownload"
    ]
    assert page.locator("#credit-notes td.num").get_attribute("data-amount") == "17.05"
    # AND the running charge beside them (12.87, or 17.82 once the first test sent more)
    usage = json.loads(world.billing("usage", "acct-1", "--json"))
    running = usage["invoice_preview"]["total"]
    assert running in {"12.87", "17.82"}
    expect(page.locator("#running-charge")).to_have_text(f"${running}")
    keep_screenshot(page)  # the page with all it shows: charges, days, an invoice, its notes
    # AND each PDF downloads through the page, the stored one byte for byte
    for document in ("ADJ-2026-000001", "CN-2026-000001"):
        with page.expect_download() as download:
            page.get_by_role("button", name=f"Download the PDF of {document}").click()
        assert download.value.suggested_filename == f"{document}.pdf"
        saved = Path(download.value.path()).read_bytes()
        stored = world.aws.object(INVOICE_BUCKET, f"invoices/acct-1/2026-11/{document}.pdf")
        assert saved.startswith(b"%PDF-")
        assert saved == stored
