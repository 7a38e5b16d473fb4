// The customer portal: plain JavaScript, no build step, no third-party origin.
//
// The link an operator hands out (`billing portal-link`) carries the account and a
// short-lived credential in the URL's fragment, which browsers never send to a server (nor
// in a Referer). The page moves both into this tab's sessionStorage and takes them out of
// the address bar (and so out of the history) before it asks the API for anything.
//
// Amounts arrive as exact decimal strings and are only ever formatted, never computed with
// as floats (Intl.NumberFormat formats a string as the exact decimal it spells).
//
// No dollar or hash sign anywhere in this file: the page is served from an API Gateway
// mapping template, which is Velocity (a test checks it).
"use strict";

(function portal() {
  const REFRESH_MS = 3000;
  const INVOICES_EVERY = 20; // refreshes: the invoices and their corrections change seldom
  const SESSION_KEY = "billing.portal";
  const SVG = "http://www.w3.org/2000/svg";

  const session = readSession();
  let currency = null;
  let current = null; // the account's current period
  let chosen = ""; // the period shown: "" for the current one, whichever it is
  let thresholds = null;
  let refreshes = 0;
  let stopped = false;

  function readSession() {
    const fragment = new URLSearchParams(window.location.hash.slice(1));
    if (fragment.has("token")) {
      const fresh = { account: fragment.get("account"), token: fragment.get("token") };
      window.sessionStorage.setItem(SESSION_KEY, JSON.stringify(fresh));
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    const saved = window.sessionStorage.getItem(SESSION_KEY);
    const parsed = saved ? JSON.parse(saved) : null;
    return parsed && parsed.account && parsed.token ? parsed : null;
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, options) {
    const url = "v1/accounts/" + encodeURIComponent(session.account) + path;
    const headers = { Authorization: "Bearer " + session.token };
    if (options && options.body) headers["Content-Type"] = "application/json";
    const response = await fetch(url, { ...(options || {}), cache: "no-store", headers });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, body.message || response.statusText);
    return body;
  }

  // --- formatting ---------------------------------------------------------------------------

  function money(amount, inCurrency) {
    const code = inCurrency || currency;
    const minor = new Intl.NumberFormat(undefined, { style: "currency", currency: code })
      .resolvedOptions().maximumFractionDigits;
    // at least the currency's minor units, and every further digit the amount has
    const format = new Intl.NumberFormat(undefined, {
      style: "currency",
      currency: code,
      minimumFractionDigits: minor,
      maximumFractionDigits: Math.max(fractionDigits(amount), minor),
    });
    return format.format(amount);
  }

  // A period is a calendar month ("2026-11"): its name, and its number of days.
  function monthOf(period) {
    const format = new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "long", timeZone: "UTC",
    });
    const [year, month] = period.split("-").map(Number);
    return format.format(new Date(Date.UTC(year, month - 1, 1)));
  }

  function daysIn(period) {
    const [year, month] = period.split("-").map(Number);
    return new Date(Date.UTC(year, month, 0)).getUTCDate(); // day 0 of the next month
  }

  function quantity(text) {
    return new Intl.NumberFormat(undefined, { maximumFractionDigits: 20 }).format(text);
  }

  function fractionDigits(text) {
    const point = text.indexOf(".");
    return point < 0 ? 0 : text.length - point - 1;
  }

  function isZero(text) {
    return /^-?0*\.?0*(?![\s\S])/.test(text);
  }

  // Adds two decimal strings exactly (a meter's charges): digits as BigInt, never floats.
  function addDecimals(a, b) {
    const scale = Math.max(fractionDigits(a), fractionDigits(b));
    const sum = scaled(a, scale) + scaled(b, scale);
    const negative = sum < 0n;
    const digits = (negative ? -sum : sum).toString().padStart(scale + 1, "0");
    const whole = digits.slice(0, digits.length - scale);
    const part = scale ? "." + digits.slice(digits.length - scale) : "";
    return (negative ? "-" : "") + whole + part;
  }

  function compareDecimals(a, b) {
    const scale = Math.max(fractionDigits(a), fractionDigits(b));
    const difference = scaled(a, scale) - scaled(b, scale);
    return difference < 0n ? -1 : difference > 0n ? 1 : 0;
  }

  function scaled(text, scale) {
    const negative = text.startsWith("-");
    const parts = text.replace("-", "").split(".");
    const value = BigInt(parts[0] + (parts[1] || "").padEnd(scale, "0"));
    return negative ? -value : value;
  }

  // --- the DOM ------------------------------------------------------------------------------

  function byId(id) {
    return document.getElementById(id);
  }

  function element(tag, text, attributes) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    return node;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    tr.append(...cells);
    return tr;
  }

  function amountCell(amount, inCurrency) {
    return element("td", money(amount, inCurrency), { class: "num", "data-amount": amount });
  }

  function fill(table, part, rows) {
    const section = part === "tfoot" ? table.tFoot : table.tBodies[0];
    section.replaceChildren(...rows);
  }

  function showAmount(id, amount) {
    const node = byId(id);
    node.textContent = money(amount);
    node.dataset.amount = amount;
  }

  function notice(text) {
    const box = byId("notice");
    box.textContent = text || "";
    box.hidden = !text;
  }

  // --- what the page shows ------------------------------------------------------------------

  function showAccount(account) {
    currency = account.currency;
    byId("account-name").textContent = account.name;
    document.title = account.name + ": usage and charges";
    current = account.current_period.period;
    offerPeriods([current, previousPeriod(current)]);
  }

  // The periods to choose from: the current one, the one before, and every invoiced one,
  // newest first.
  function offerPeriods(periods) {
    const select = byId("period");
    const known = new Set([...select.options].map((option) => option.value));
    const wanted = [...new Set([...known, ...periods])].filter(Boolean).sort().reverse();
    if (wanted.length === known.size) return;
    select.replaceChildren(...wanted.map((period) => {
      const label = monthOf(period) + (period === current ? " (current)" : "");
      const option = element("option", label, { value: period });
      option.selected = period === (chosen || current);
      return option;
    }));
  }

  function previousPeriod(period) {
    const [year, month] = period.split("-").map(Number);
    const before = new Date(Date.UTC(year, month - 2, 1));
    return before.toISOString().slice(0, 7);
  }

  function periodQuery() {
    return chosen ? "?period=" + encodeURIComponent(chosen) : "";
  }

  function showUsage(report) {
    const preview = report.invoice_preview;
    byId("period-line").textContent =
      report.status === "open" ? "open, still counting" : "closed";
    showAmount("running-charge", preview.total);
    showAmount("amount-due", preview.amount_due);
    const asOf = byId("as-of");
    asOf.dateTime = report.as_of;
    asOf.textContent = new Date(report.as_of).toLocaleString();

    fill(byId("meters"), "tbody", report.meters.map((meter) => row([
      element("td", meter.description),
      element("td", quantity(meter.quantity), { class: "num", "data-quantity": meter.quantity }),
      element("td", meter.unit || ""),
      amountCell(meter.charges.reduce((sum, charge) => addDecimals(sum, charge.amount), "0")),
    ])));
    fill(byId("preview"), "tbody", preview.lines.map((line) => row([
      element("td", line.description),
      element("td", line.kind === "usage" ? quantity(line.quantity) : "", { class: "num" }),
      amountCell(line.amount),
    ])));
    const totals = [["Subtotal", preview.subtotal], ["Tax", preview.tax], ["Total", preview.total]];
    if (!isZero(preview.credits_applied)) {
      totals.push(["Paid with prepaid credits", "-" + preview.credits_applied]);
      totals.push(["Amount due", preview.amount_due]);
    }
    fill(byId("preview"), "tfoot", totals.map(([label, amount]) => row([
      element("td", label), element("td"), amountCell(amount),
    ])));
  }

  function showCredits(credits) {
    byId("no-credits").hidden = credits.grants.length > 0;
    byId("credits").hidden = credits.grants.length === 0;
    fill(byId("credits"), "tbody", credits.grants.map((grant) => row([
      element("td", grant.id),
      element("td", grant.expires ? grant.expires.slice(0, 10) : "never"),
      amountCell(grant.remaining),
      amountCell(grant.this_period),
    ])));
  }

  // One bar chart per meter: a bar per local day of the period, its height the day's
  // quantity against the period's largest day (a visual scale only; the exact figure is the
  // bar's title and data attribute).
  // One bar chart per meter: a slot per day of the period (the days still to come empty), a
  // bar's height the day's quantity against the period's largest day (a visual scale only;
  // the exact figure is in the bar's title, its data attribute and the note under it).
  function showDaily(daily) {
    const slots = daysIn(daily.period);
    const charts = daily.meters.map((meter) => {
      const figure = element("figure", null, { class: "chart", "data-meter": meter.meter });
      const unit = meter.unit ? " (" + meter.unit + ")" : "";
      figure.append(element("h3", meter.description + unit));
      figure.append(bars(meter, slots));
      const scale = element("div", null, { class: "scale" });
      scale.append(element("span", dayName(daily.period, 1)), element("span", dayName(daily.period, slots)));
      figure.append(scale);
      figure.append(element("p", largestDay(meter), { class: "note" }));
      if (!meter.complete) {
        figure.append(element("p", "Some days are not broken down; the period's total is " +
          quantity(meter.quantity) + ".", { class: "note" }));
      }
      return figure;
    });
    byId("daily-charts").replaceChildren(...charts);
  }

  function dayName(period, day) {
    const [year, month] = period.split("-").map(Number);
    const format = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", timeZone: "UTC" });
    return format.format(new Date(Date.UTC(year, month - 1, day)));
  }

  function largestDay(meter) {
    const known = meter.days.filter((day) => day.quantity !== null);
    if (known.length === 0) return "No usage yet.";
    const top = known.reduce((a, b) => (compareDecimals(b.quantity, a.quantity) > 0 ? b : a));
    return "Largest day: " + quantity(top.quantity) + " on " +
      dayName(top.date.slice(0, 7), Number(top.date.slice(8))) + ".";
  }

  function bars(meter, slots) {
    const width = 100 / slots;
    const largest = Math.max(0, ...meter.days.map((day) => Number(day.quantity || "0")));
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 100 40");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", meter.description + " by day: " + meter.days
      .filter((day) => day.quantity !== null)
      .map((day) => day.date + ": " + quantity(day.quantity)).join(", "));
    for (const day of meter.days) {
      const slot = Number(day.date.slice(8)) - 1;
      const value = Number(day.quantity || "0");
      const height = largest > 0 ? (value / largest) * 38 : 0;
      const bar = document.createElementNS(SVG, "rect");
      bar.setAttribute("x", String(slot * width + width * 0.15));
      bar.setAttribute("width", String(width * 0.7));
      bar.setAttribute("y", String(40 - height));
      bar.setAttribute("height", String(height));
      bar.dataset.date = day.date;
      bar.dataset.quantity = day.quantity === null ? "" : day.quantity;
      const title = document.createElementNS(SVG, "title");
      title.textContent = day.date + ": " +
        (day.quantity === null ? "not known" : quantity(day.quantity));
      bar.append(title);
      svg.append(bar);
    }
    return svg;
  }

  function showInvoices(list) {
    byId("no-invoices").hidden = list.invoices.length > 0;
    byId("invoices").hidden = list.invoices.length === 0;
    offerPeriods(list.invoices.map((invoice) => invoice.period));
    const newestFirst = [...list.invoices].reverse();
    fill(byId("invoices"), "tbody", newestFirst.map((invoice) => {
      const total = invoice.total === null || invoice.currency === null
        ? element("td", "", { class: "num" })
        : amountCell(invoice.total, invoice.currency);
      return row([
        element("td", invoice.invoice_number),
        element("td", invoice.period),
        total,
        downloadCell("/invoices/", invoice.invoice_number, "invoice"),
      ]);
    }));
  }

  // The credit notes and the adjustment invoices beside the invoices they correct, each
  // kind in its own table, newest first; one still being issued (numbered, its PDF not
  // stored yet) is listed without a download.
  const CORRECTIONS = {
    creditNotes: {
      part: "credit-notes-part", table: "credit-notes", route: "/credit-notes/",
      list: "credit_notes", number: "credit_note_number", what: "credit note",
    },
    adjustments: {
      part: "adjustments-part", table: "adjustments", route: "/adjustments/",
      list: "adjustments", number: "adjustment_number", what: "adjustment invoice",
    },
  };

  function showCorrections(kind, list) {
    const documents = list[kind.list];
    byId(kind.part).hidden = documents.length === 0;
    const newestFirst = [...documents].sort((a, b) => (a.issued_at < b.issued_at ? 1 : -1));
    fill(byId(kind.table), "tbody", newestFirst.map((each) => row([
      element("td", each[kind.number]),
      element("td", each.invoice_number),
      element("td", each.issued_at.slice(0, 10), { "data-issued-at": each.issued_at }),
      element("td", each.correction),
      amountCell(each.total, each.currency),
      each.status === "stored"
        ? downloadCell(kind.route, each[kind.number], kind.what)
        : element("td", "being issued", { class: "muted" }),
    ])));
  }

  function downloadCell(route, number, what) {
    const download = element("button", "Download", {
      type: "button",
      class: "link",
      "data-document": number,
      "aria-label": "Download the PDF of " + number,
    });
    download.addEventListener("click", () => downloadPdf(route, number, what));
    const cell = element("td");
    cell.append(download);
    return cell;
  }

  // A fresh link for each download: the API signs one for 300 seconds, and its answer asks
  // the browser to save the file rather than leave this page.
  async function downloadPdf(route, number, what) {
    try {
      const found = await api(route + encodeURIComponent(number));
      window.location.assign(found.pdf_url);
    } catch (error) {
      notice("The " + what + " could not be fetched: " + error.message);
    }
  }

  function showThresholds(doc) {
    thresholds = doc;
    byId("budget-line").textContent = doc.budget === null
      ? "No monthly budget set."
      : "Monthly budget: " + money(doc.budget, doc.currency) + ".";
    const ascending = [...doc.thresholds].sort((a, b) => compareDecimals(a.amount, b.amount));
    const items = ascending.map((threshold) => {
      const text = threshold.percent
        ? threshold.percent + "% of the budget (" + money(threshold.amount, doc.currency) + ")"
        : money(threshold.amount, doc.currency);
      const item = element("li", null, { "data-threshold": threshold.id });
      item.append(element("span", text + " "));
      const remove = element("button", "Remove", { type: "button", class: "link" });
      remove.addEventListener("click", () => saveThresholds(
        doc.budget, doc.thresholds.filter((other) => other.id !== threshold.id)));
      item.append(remove);
      return item;
    });
    if (items.length === 0) items.push(element("li", "No alerts set."));
    byId("thresholds").replaceChildren(...items);
  }

  function asRequest(threshold) {
    return threshold.percent ? { percent: threshold.percent } : { amount: threshold.amount };
  }

  async function saveThresholds(budget, list) {
    const body = { budget: budget, thresholds: list.map(asRequest) };
    const error = byId("form-error");
    try {
      showThresholds(await api("/thresholds", { method: "PUT", body: JSON.stringify(body) }));
      error.hidden = true;
      return true;
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
      return false;
    }
  }

  async function addThreshold(event) {
    event.preventDefault();
    const form = event.target;
    const kind = form.elements.kind.value;
    const value = form.elements.value.value.trim();
    const budget = form.elements.budget.value.trim() || (thresholds && thresholds.budget);
    const added = kind === "percent" ? { percent: value } : { amount: value };
    const list = [...thresholds.thresholds.map(asRequest), added];
    if (await saveThresholds(budget || null, list)) form.reset();
  }

  // --- refreshing ---------------------------------------------------------------------------

  async function refresh() {
    const [usage, daily, credits] = await Promise.all([
      api("/usage" + periodQuery()), api("/usage/daily" + periodQuery()), api("/credits"),
    ]);
    showUsage(usage);
    showDaily(daily);
    showCredits(credits);
    if (refreshes % INVOICES_EVERY === 0) {
      const [invoices, creditNotes, adjustments] = await Promise.all([
        api("/invoices"), api("/credit-notes"), api("/adjustments"),
      ]);
      showInvoices(invoices);
      showCorrections(CORRECTIONS.creditNotes, creditNotes);
      showCorrections(CORRECTIONS.adjustments, adjustments);
    }
    refreshes += 1;
  }

  function refused(error) {
    return error instanceof ApiError && (error.status === 401 || error.status === 403);
  }

  async function tick() {
    if (stopped) return;
    try {
      await refresh();
      notice("");
    } catch (error) {
      if (refused(error)) {
        stopped = true;
        notice("This link has expired or was revoked: ask for a new one. (" + error.message + ")");
        return;
      }
      notice("Could not refresh (" + error.message + "); trying again.");
    }
    window.setTimeout(tick, REFRESH_MS);
  }

  async function start() {
    if (!session) {
      notice("Open this page from the link you were given: it carries your access.");
      return;
    }
    try {
      showAccount(await api(""));
      showThresholds(await api("/thresholds"));
    } catch (error) {
      notice(refused(error)
        ? "This link has expired, was revoked or is not for this account: ask for a new one."
        : "The account could not be loaded (" + error.message + "); reload to try again.");
      return;
    }
    byId("thresholds-form").addEventListener("submit", addThreshold);
    byId("period").addEventListener("change", (event) => {
      chosen = event.target.value === current ? "" : event.target.value;
      refresh().catch((error) => notice("Could not load the period (" + error.message + ")."));
    });
    await tick();
  }

  start();
})();
