// The admin API as the console calls it: every request carries the admin token (when one was
// given) as "Authorization: Bearer"; a 401 opens the sign-in dialog and the request is tried
// again with the token typed in. The token is kept in sessionStorage (gone with the tab).

const TOKEN_KEY = "teller.admin.token";
const OPERATOR_KEY = "teller.admin.operator";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function operatorName() {
  return sessionStorage.getItem(OPERATOR_KEY) || "";
}

export function setOperatorName(name) {
  if (name) sessionStorage.setItem(OPERATOR_KEY, name);
}

let signingIn = null;  // one dialog for all the requests that got a 401 together

function askForToken(reason) {
  if (signingIn) return signingIn;
  const dialog = document.getElementById("login");
  const form = document.getElementById("login-form");
  document.getElementById("login-why").textContent = reason;
  document.getElementById("login-operator").value = operatorName();
  signingIn = new Promise((resolve) => {
    form.addEventListener("submit", () => {
      sessionStorage.setItem(TOKEN_KEY, document.getElementById("login-token").value.trim());
      setOperatorName(document.getElementById("login-operator").value.trim());
      document.getElementById("login-token").value = "";
      signingIn = null;
      resolve();
    }, { once: true });
  });
  dialog.showModal();
  return signingIn;
}

export async function request(path, options = {}) {
  for (;;) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = { ...(options.headers || {}) };
    if (token) headers.Authorization = `Bearer ${token}`;
    const resp = await fetch(path, { ...options, headers });
    if (resp.status !== 401) return resp;
    const message = (await resp.text()).trim();
    await askForToken(message || "The admin API asks for its token.");
  }
}

async function checked(resp) {
  if (resp.ok) return resp;
  throw new ApiError(resp.status, (await resp.text()).trim() || `HTTP ${resp.status}`);
}

export async function getJSON(path) {
  return (await checked(await request(path, { headers: { Accept: "application/json" } }))).json();
}

export async function postJSON(path, body) {
  const resp = await request(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  return (await checked(resp)).json();
}

// Downloads go through fetch (so they carry the token) and are saved from a blob.
export async function download(path) {
  const resp = await checked(await request(path));
  const disposition = resp.headers.get("Content-Disposition") || "";
  const match = /filename="([^"]+)"/.exec(disposition);
  const url = URL.createObjectURL(await resp.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = match ? match[1] : "download";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return link.download;
}
