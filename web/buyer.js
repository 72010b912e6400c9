// Buyer page: bind a receive address, show the deposit address (QR, copy), poll the status.
// Only the teller's own public API is called (the Go teller's routes plus /api/qr.svg and
// /api/status/payouts); every message shown for a refusal is the server's own text.

const POLL_MS = 5000;        // normal status polling interval
const POLL_MAX_MS = 60000;   // ceiling of the back-off after 429 or a network error

const STATUS_WORDS = {
  waiting_deposit: "Waiting for your deposit",
  waiting_decide: "Deposit received, being processed",
  waiting_passthrough: "Deposit received, buying on the exchange",
  waiting_passthrough_order_complete: "Deposit received, waiting for the exchange order",
  waiting_send: "Deposit received, sending your tokens",
  waiting_confirm: "Tokens sent, waiting for confirmation",
  done: "Done: tokens sent and confirmed",
  cancelled: "Cancelled: the deposit was removed from its chain",
  needs_review: "Held for an operator to check",
};

const $ = (id) => document.getElementById(id);
const state = { config: null, health: null, address: "", pollTimer: 0, pollMs: POLL_MS,
                lastStatuses: "" };

async function getJSON(path) {
  const resp = await fetch(path, { headers: { Accept: "application/json" } });
  const text = await resp.text();
  if (!resp.ok) throw Object.assign(new Error(text.trim()), { status: resp.status });
  return JSON.parse(text);
}

function setText(selector, text) {
  for (const el of document.querySelectorAll(selector)) el.textContent = text;
}

function notice(kind, text, id) {
  const box = $("notices");
  const old = id && box.querySelector(`[data-id="${id}"]`);
  if (old) old.remove();
  if (!text) return;
  const div = document.createElement("div");
  div.className = `notice ${kind}`;
  div.dataset.id = id || "";
  div.textContent = text;
  box.append(div);
}

const isZero = (amount) => /^0*(\.0*)?$/.test(String(amount));

function showRate() {
  const coin = $("coin").value;
  const dep = state.config && state.config.deposits[coin.toLowerCase()];
  const token = state.config ? state.config.payout_token : "SKY";
  $("rate").textContent = dep ? `Rate: 1 ${coin} = ${dep.fixed_exchange_rate} ${token}` : "";
  $("confirmations").textContent = dep
    ? `Your deposit counts after ${dep.confirmations_required} confirmation(s).` : "";
}

async function loadConfig() {
  const [config, health] = await Promise.all([getJSON("/api/config"), getJSON("/api/health")]);
  state.config = config;
  state.health = health;
  setText("[data-token]", config.payout_token);
  document.title = `Buy ${config.payout_token}`;
  const select = $("coin");
  select.replaceChildren();
  for (const [name, dep] of Object.entries(config.deposits)) {
    if (!dep.enabled) continue;
    const option = document.createElement("option");
    option.value = name.toUpperCase();
    option.textContent = name.toUpperCase();
    select.append(option);
  }
  const coins = [...select.options].map((o) => o.value);
  $("pay-with").textContent = coins.length > 1
    ? `${coins.slice(0, -1).join(", ")} or ${coins[coins.length - 1]}` : coins[0] || "crypto";
  showRate();
  const balance = health.exchange.balance;
  $("inventory").textContent = balance.coins;
  if (!config.enabled) {
    notice("warn", "New deposit addresses are not being handed out right now. " +
      "Deposits to addresses you already have are still paid.", "bind-disabled");
  }
  if (isZero(balance.coins)) {
    notice("bad", `Sold out: no ${config.payout_token} is left to sell. ` +
      "Please do not send a deposit now.", "sold-out");
  }
  if (config.max_bound_addrs > 0) {
    $("bind").title = `At most ${config.max_bound_addrs} deposit addresses per receive address`;
  }
  $("bind").disabled = !config.enabled || select.options.length === 0;
}

// The server validates the address (its own messages); /api/status answers 400 with them.
async function checkAddress(address) {
  const resp = await fetch(`/api/status?skyaddr=${encodeURIComponent(address)}`);
  const text = await resp.text();
  if (resp.status === 400) return { error: text.trim() };
  if (resp.status === 429) return { error: "", throttled: true };
  if (!resp.ok) return { error: text.trim() || `HTTP ${resp.status}` };
  return { statuses: JSON.parse(text).statuses || [] };
}

function fieldError(text) {
  $("address-error").textContent = text;
  $("address").setAttribute("aria-invalid", text ? "true" : "false");
}

async function bind(event) {
  event.preventDefault();
  const address = $("address").value.trim();
  if (!address) {
    fieldError("Enter your receive address.");
    return;
  }
  const checked = await checkAddress(address);
  if (checked.error) {
    fieldError(checked.error);
    return;
  }
  fieldError("");
  watch(address);
  const coin = $("coin").value;
  $("bind").disabled = true;
  try {
    const resp = await fetch("/api/bind", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ skyaddr: address, coin_type: coin }),
    });
    const text = await resp.text();
    if (!resp.ok) {
      const message = text.trim();
      if (resp.status === 409) {
        notice("warn", `${message}. Your existing deposit addresses keep working.`, "bind");
      } else if (resp.status === 403) {
        notice("warn", `${message}.`, "bind");
      } else if (resp.status === 503) {
        notice("bad", "No deposit address is free right now; please try again later.", "bind");
      } else if (resp.status === 429) {
        notice("warn", "Too many requests; wait a minute and try again.", "bind");
      } else {
        fieldError(message);
      }
      return;
    }
    notice("", "", "bind");
    showDeposit(JSON.parse(text));
    poll(true);
  } finally {
    $("bind").disabled = !(state.config && state.config.enabled);
  }
}

function showDeposit(bound) {
  $("deposit").hidden = false;
  setText("[data-coin]", bound.coin_type);
  $("deposit-address").textContent = bound.deposit_address;
  $("qr").src = `/api/qr.svg?data=${encodeURIComponent(bound.deposit_address)}`;
  $("copied").textContent = "";
  $("deposit").scrollIntoView({ block: "nearest" });
}

async function copyAddress() {
  const text = $("deposit-address").textContent;
  try {
    await navigator.clipboard.writeText(text);
    $("copied").textContent = "Copied.";
  } catch {
    const range = document.createRange();  // no clipboard permission: select it for the user
    range.selectNodeContents($("deposit-address"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    $("copied").textContent = "Selected: press Ctrl+C (or long-press) to copy.";
  }
}

function watch(address) {
  state.address = address;
  const url = new URL(location.href);
  url.searchParams.set("address", address);
  history.replaceState(null, "", url);
  poll(true);
}

function formatTime(seconds) {
  return new Date(seconds * 1000).toLocaleString();
}

async function renderStatuses(statuses) {
  const key = JSON.stringify(statuses.map((s) => [s.seq, s.status, s.coin_type]));
  if (key === state.lastStatuses) return;
  state.lastStatuses = key;
  getJSON("/api/health").then((health) => {  // a payout changed the inventory
    $("inventory").textContent = health.exchange.balance.coins;
  }).catch(() => {});
  let txids = {};
  if (statuses.some((s) => ["waiting_confirm", "done", "needs_review"].includes(s.status))) {
    try {
      const answer = await getJSON(`/api/status/payouts?skyaddr=${encodeURIComponent(state.address)}`);
      txids = Object.fromEntries(answer.payouts.map((p) => [p.seq, p.txid]));
    } catch {  // the txids are extra: show the statuses, fetch the txids on the next poll
      state.lastStatuses = "";
    }
  }
  const list = $("status-list");
  list.replaceChildren();
  $("status-empty").textContent = statuses.length ? "" :
    "No deposit address is bound to this receive address yet.";
  for (const entry of statuses) {
    const li = document.createElement("li");
    li.dataset.status = entry.status;
    const word = document.createElement("div");
    word.className = `status-word ${entry.status}`;
    word.textContent = STATUS_WORDS[entry.status] || entry.status;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = `#${entry.seq} · ${entry.coin_type} · updated ${formatTime(entry.updated_at)}`;
    li.append(word, meta);
    if (txids[entry.seq]) {
      const tx = document.createElement("div");
      tx.className = "meta txid";
      tx.textContent = `Payout transaction: ${txids[entry.seq]}`;
      li.append(tx);
    }
    list.append(li);
  }
}

async function poll(now = false) {
  clearTimeout(state.pollTimer);
  if (!state.address) return;
  if (!now && document.hidden) {  // nobody is looking: check again when the tab is back
    state.pollTimer = setTimeout(poll, state.pollMs);
    return;
  }
  try {
    const checked = await checkAddress(state.address);
    if (checked.throttled) {
      state.pollMs = Math.min(state.pollMs * 2, POLL_MAX_MS);
      $("poll-note").textContent = `Busy; checking again in ${state.pollMs / 1000} s.`;
    } else if (checked.error) {
      fieldError(checked.error);
      state.address = "";
      return;
    } else {
      state.pollMs = POLL_MS;
      $("poll-note").textContent = "Updates every few seconds.";
      await renderStatuses(checked.statuses);
    }
  } catch {
    state.pollMs = Math.min(state.pollMs * 2, POLL_MAX_MS);
    $("poll-note").textContent = `Cannot reach the server; retrying in ${state.pollMs / 1000} s.`;
  }
  state.pollTimer = setTimeout(poll, state.pollMs);
}

async function main() {
  $("bind-form").addEventListener("submit", bind);
  $("coin").addEventListener("change", showRate);
  $("copy").addEventListener("click", copyAddress);
  $("address").addEventListener("change", async () => {
    const address = $("address").value.trim();
    if (!address) return;
    const checked = await checkAddress(address);
    fieldError(checked.error || "");
    if (!checked.error && !checked.throttled) watch(address);
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(true); });
  try {
    await loadConfig();
  } catch (err) {
    notice("bad", `The teller is not answering: ${err.message}`, "config");
  }
  const initial = new URL(location.href).searchParams.get("address");
  if (initial) {
    $("address").value = initial;
    watch(initial);
  }
}

main();
