// Operator console: overview, deposits (filter, search, paging, detail), review queue with
// confirmed actions, audit log, downloads. Everything comes from the admin API (api.js).

import { ApiError, download, getJSON, operatorName, postJSON, setOperatorName } from "./api.js";
import { dailyChart } from "./chart.js";

const PAGE_SIZE = 50;
const REFRESH_MS = 10000;
const ACTIONS = {
  retry: { label: "Retry payout", text: "pay this deposit again with a new payout (the old one can never confirm)" },
  cancel: { label: "Cancel", text: "never pay this deposit", danger: true },
  mark_done: { label: "Mark resolved", text: "mark it done: the payout reached the buyer (checked on chain)" },
};

const $ = (id) => document.getElementById(id);
const view = { tab: "overview", offset: 0, total: 0, filter: new URLSearchParams(), overview: null,
               daily: null, chartWidth: 0 };

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// A row's cells: a ready <td> stays as it is, anything else is wrapped in one.
const row = (cells) => h("tr", {}, cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c))));

function table(headers, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))),
           h("tbody", {}, rows.map(row)));
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) : "";
}

const short = (text, n = 14) => (text && text.length > n ? `${text.slice(0, n)}…` : text || "");
// A status name may break after its underscores (narrow screens), and reads the same.
const statusCell = (s) => h("span", { class: `status ${s}` },
  s.split("_").flatMap((part, i) => (i ? ["_", h("wbr"), part] : [part])));

function flash(message, isError = false) {
  $("flash").textContent = message;
  $("flash").className = isError ? "error" : "";
  if (message && !isError) setTimeout(() => { if ($("flash").textContent === message) flash(""); }, 6000);
}

async function guarded(work) {
  try {
    return await work();
  } catch (err) {
    flash(err instanceof ApiError ? `${err.status}: ${err.message}` : `Error: ${err.message}`, true);
    return undefined;
  }
}

// -- overview -------------------------------------------------------------------------------

function renderOverview(o) {
  view.overview = o;
  const warnings = o.health.warnings;
  $("warnings").replaceChildren(warnings.length
    ? h("div", { class: "warn-box" }, h("ul", {}, warnings.map((w) => h("li", {}, w)))) : "");
  const statuses = o.statuses;
  const coins = Object.keys(o.counts).sort();
  $("counts").replaceChildren(coins.length ? h("div", { class: "table-wrap" }, table(["status", ...coins],
    statuses.map((s) => [statusCell(s), ...coins.map((c) => h("td", { class: "num" }, o.counts[c][s] || 0))])))
    : h("p", { class: "hint" }, "No deposits yet."));
  const acc = o.accounting;
  $("accounting").replaceChildren(table(["", "amount"], [
    ...Object.entries(acc.received).map(([c, v]) => [`received ${c}`, h("td", { class: "num" }, v)]),
    [`sent ${acc.sent_token}`, h("td", { class: "num" }, acc.sent)]]),
    h("p", { class: "hint" }, `as of ${when(o.accounting_at)} UTC`));
  const ex = o.health.exchange;
  $("sender").replaceChildren(h("dl", { class: "record" },
    h("dt", {}, "balance"), h("dd", {}, `${ex.balance.coins} ${ex.balance.token}`),
    h("dt", {}, "sender_error"), h("dd", { class: ex.sender_error ? "bad" : "ok" }, ex.sender_error || "none"),
    h("dt", {}, "errored deposits"), h("dd", {}, ex.deposit_error_count),
    h("dt", {}, "version"), h("dd", {}, `${o.health.version} (up ${o.health.uptime})`)));
  const scanners = Object.entries(o.health.scanners);
  $("scanners").replaceChildren(scanners.length ? table(["chain", "tip", "cursor", "lag", "node"],
    scanners.map(([c, s]) => [c, s.tip ?? "?", s.cursor_height ?? "?", s.lag_blocks ?? "?",
      h("td", { class: s.node_reachable === false ? "bad" : "ok" },
        s.node_reachable === false ? `unreachable: ${s.last_error || ""}` : "reachable")]))
    : h("p", { class: "hint" }, "No chain scanner runs: deposits come through the dummy API."));
  const pools = Object.entries(o.pools);
  $("pools").replaceChildren(pools.length ? table(["coin", "free addresses", ""],
    pools.map(([c, p]) => [c, h("td", { class: "num" }, p.remaining),
      h("td", { class: p.low || !p.remaining ? "bad" : "ok" },
        !p.remaining ? "empty: binds answer 503" : p.low ? `below low-water mark ${p.low_water}` : "ok")]))
    : h("p", { class: "hint" }, "No address pool is enabled."));
  $("events").replaceChildren(o.events.length ? h("div", { class: "table-wrap" }, table(["when", "level", "message"],
    o.events.map((e) => [when(e.at), e.level, h("td", { class: "mono" }, e.message)])))
    : h("p", { class: "hint" }, "No ERROR or notice=WATCH line since start."));
  const review = (o.counts && coins.reduce((n, c) => n + (o.counts[c].needs_review || 0), 0)) || 0;
  $("review-count").textContent = review ? String(review) : "";
}

function drawChart() {
  if (!view.daily) return;
  view.chartWidth = $("chart").clientWidth;
  $("chart").replaceChildren(dailyChart(view.daily.days, view.daily.token, view.chartWidth || 720));
}

async function loadOverview() {
  const daily = getJSON("/api/deposits/daily?days=30");  // a full scan at times: not awaited first
  const o = await getJSON("/api/overview");
  renderOverview(o);
  fillFilterOptions(o);
  view.daily = await daily;
  drawChart();
}

function fillFilterOptions(o) {
  for (const [id, values] of [["f-status", o.statuses], ["f-coin", o.coins]]) {
    const select = $(id);
    if (select.options.length > 1) continue;
    for (const v of values) select.append(h("option", { value: v }, v));
  }
}

// -- deposits -------------------------------------------------------------------------------

function depositQuery(extra = {}) {
  const params = new URLSearchParams(view.filter);
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  for (const [k, v] of [...params]) if (v === "") params.delete(k);
  return params.toString();
}

async function loadDeposits() {
  const page = await getJSON(`/api/deposits?${depositQuery({ offset: view.offset, limit: PAGE_SIZE })}`);
  view.total = page.total;
  const rows = page.deposits.map((d) => [
    h("td", { class: "num" }, d.seq), d.coin_type, statusCell(d.status),
    h("td", { class: "mono", title: d.deposit_id }, short(d.deposit_id)),
    h("td", { class: "num" }, d.deposit_value_text), h("td", { class: "num" }, d.sky_sent_text),
    h("td", { class: "mono", title: d.sky_address }, short(d.sky_address)), when(d.updated_at),
    h("td", {}, h("button", {
      type: "button", class: "secondary", "data-open": `${d.coin_type}/${d.deposit_id}`,
      onclick: () => openDetail(d.coin_type, d.deposit_id),
    }, "Open")),
  ]);
  $("deposit-table").tBodies[0].replaceChildren(...rows.map(row));
  const first = page.total ? page.offset + 1 : 0;
  $("page-info").textContent = `${first}–${page.offset + page.deposits.length} of ${page.total} deposits` +
    (view.filter.toString() ? " (filtered)" : "");
  $("prev").disabled = view.offset === 0;
  $("next").disabled = view.offset + PAGE_SIZE >= page.total;
}

function field(name, value) {
  return [h("dt", {}, name), h("dd", { class: "mono" }, value === "" || value === undefined ? "—" : String(value))];
}

async function openDetail(coin, depositId) {
  const query = new URLSearchParams({ coin_type: coin, deposit_id: depositId });
  const found = await guarded(() => getJSON(`/api/deposits/detail?${query}`));
  if (!found) return;
  const d = found.deposit;
  const p = found.payout;
  const body = [h("dl", { class: "record" },
    field("deposit", `${d.coin_type}/${d.deposit_id}`), field("status", d.status),
    field("received", `${d.deposit_value_text} ${d.coin_type}`), field("rate", d.conversion_rate),
    field("sent", d.sky_sent_text), field("payout txid", d.txid), field("deposit address", d.deposit_address),
    field("receive address", d.sky_address), field("buy method", d.buy_method),
    field("attempts", d.attempts), field("last error", d.last_error), field("error", d.error),
    field("review reason", d.review_reason), field("review note", d.review_note),
    field("created", when(d.created_at)), field("updated", when(d.updated_at)))];
  if (p) {
    body.push(h("h4", {}, `Payout ${p.id} (${p.status})`),
      h("dl", { class: "record" }, field("broadcast", when(p.broadcast_at)), field("attempts", p.attempts),
        field("last error", p.last_error),
        field("candidates", [p.signed, ...(p.candidates || [])].filter(Boolean).map((c) => c.txid).join(", "))));
  }
  if (d.buy_method === "passthrough" || (d.passthrough && d.passthrough.exchange_name)) {
    body.push(h("h4", {}, "Passthrough order"), h("pre", {}, JSON.stringify(d.passthrough, null, 2)));
  }
  body.push(h("h4", {}, "Audit"), found.audit.length ? auditTable(found.audit)
    : h("p", { class: "hint" }, "No operator action yet."));
  body.push(h("details", {}, h("summary", {}, "Full record"), h("pre", {}, JSON.stringify(found, null, 2))));
  if (d.status === "needs_review") body.push(reviewButtons(d));
  $("h-detail").textContent = `Deposit ${d.coin_type}/${short(d.deposit_id, 20)}`;
  $("detail-body").replaceChildren(...body);
  $("detail").hidden = false;
  $("detail").focus();
}

// -- review ---------------------------------------------------------------------------------

function reviewButtons(d) {
  return h("div", { class: "actions" }, Object.entries(ACTIONS).map(([action, a]) =>
    h("button", { type: "button", class: a.danger ? "danger" : "", "data-action": action,
      onclick: () => confirmReview(d, action) }, a.label)));
}

function confirmReview(d, action) {
  const dialog = $("confirm");
  $("h-confirm").textContent = `${ACTIONS[action].label}?`;
  $("confirm-text").textContent = `${d.coin_type}/${d.deposit_id}: ${ACTIONS[action].text}.`;
  $("confirm-note").value = "";
  $("confirm-operator").value = operatorName();
  dialog.returnValue = "";
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "ok") return;
    setOperatorName($("confirm-operator").value.trim());
    const done = await guarded(() => postJSON("/api/deposits/review", {
      coin_type: d.coin_type, deposit_id: d.deposit_id, action,
      note: $("confirm-note").value.trim(), operator: operatorName(),
    }));
    if (done) flash(`${ACTIONS[action].label}: ${d.coin_type}/${short(d.deposit_id)} is now ${done.status}.`);
    await refresh();
    if (!$("detail").hidden) await openDetail(d.coin_type, d.deposit_id);
  }, { once: true });
  dialog.showModal();
}

async function loadReview() {
  const page = await getJSON("/api/deposits?status=needs_review&limit=500");
  $("review-list").replaceChildren(...(page.deposits.length ? page.deposits.map((d) =>
    h("div", { class: "card review-item", "data-deposit": `${d.coin_type}/${d.deposit_id}` },
      h("div", { class: "what" }, h("strong", {}, `${d.coin_type}/${short(d.deposit_id, 20)}`),
        ` · ${d.deposit_value_text} ${d.coin_type} → ${d.sky_address}`,
        h("div", { class: "hint" }, d.review_reason || d.last_error || "held for review")),
      reviewButtons(d)))
    : [h("p", { class: "hint" }, "Nothing to review.")]));
}

// -- audit ----------------------------------------------------------------------------------

function auditTable(entries) {
  return table(["when", "who", "action", "deposit", "outcome", "note"], entries.map((e) => [
    when(e.at), `${e.who.operator} (${e.who.remote_addr})`, e.action,
    h("td", { class: "mono", title: e.deposit }, short(e.deposit, 24)),
    h("td", { class: e.outcome === "done" ? "ok" : "bad" }, `${e.outcome}: ${e.detail}`), e.note]));
}

async function loadAudit() {
  const page = await getJSON("/api/audit?limit=200");
  const t = auditTable(page.entries);
  $("audit-table").replaceWith(Object.assign(t, { id: "audit-table" }));
}

// -- navigation -----------------------------------------------------------------------------

const LOADERS = { overview: loadOverview, deposits: loadDeposits, review: loadReview, audit: loadAudit };

async function refresh() {
  await guarded(async () => {
    await LOADERS[view.tab]();
    if (view.tab !== "overview") await loadOverview();  // the badge and the filter options
  });
}

function showTab() {
  const tab = (location.hash || "#overview").slice(1);
  view.tab = LOADERS[tab] ? tab : "overview";
  for (const section of document.querySelectorAll(".tab")) section.hidden = section.id !== view.tab;
  for (const link of document.querySelectorAll("[data-tab]")) {
    if (link.dataset.tab === view.tab) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  refresh();
}

function main() {
  window.addEventListener("hashchange", showTab);
  new ResizeObserver(() => {
    if ($("chart").clientWidth !== view.chartWidth) drawChart();
  }).observe($("chart"));
  $("filter").addEventListener("submit", (event) => {
    event.preventDefault();
    view.filter = new URLSearchParams(new FormData($("filter")));
    view.offset = 0;
    $("detail").hidden = true;
    guarded(loadDeposits);
  });
  const turn = (step) => {
    view.offset = Math.max(0, view.offset + step);
    guarded(loadDeposits);
  };
  $("prev").addEventListener("click", () => turn(-PAGE_SIZE));
  $("next").addEventListener("click", () => turn(PAGE_SIZE));
  $("detail-close").addEventListener("click", () => { $("detail").hidden = true; });
  const save = (path) => guarded(async () => flash(`Saved ${await download(path())}`));
  $("dl-backup").addEventListener("click", () => save(() => "/api/backup"));
  $("dl-csv").addEventListener("click", () => save(() => `/api/deposits.csv?${depositQuery()}`));
  // Refresh what is on screen, except while the operator is reading a page of deposits or
  // answering a dialog.
  setInterval(() => {
    const busy = document.hidden || $("confirm").open || $("login").open || view.tab === "deposits";
    if (!busy) refresh();
  }, REFRESH_MS);
  showTab();
}

main();
