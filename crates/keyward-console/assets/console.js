// The Keyward console: one page over the admin API. Every figure comes from /admin/v1 with the
// session cookie and its CSRF token; everything received is rendered as text nodes, never as
// markup. Secrets typed here go once to the API and are cleared from their field.

import { barChart, columnChart } from "./charts.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const state = { session: null, tenants: [], timers: [] };

// ---- building blocks -----------------------------------------------------------------------

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") element.textContent = String(value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function message(kind, text) {
  return h("p", { class: `message ${kind}`, role: kind === "error" ? "alert" : "status", text });
}

function usd(micro) {
  // Micro-dollars: a call costs fractions of a cent, so small amounts keep all six places.
  return `$${(Number(micro || 0) / 1e6).toFixed(micro && Math.abs(micro) < 10000 ? 6 : 2)}`;
}

// A decimal USD string from the API ("25.000000") as people read it ("$25.00"), keeping every
// significant digit of sub-cent amounts.
function dollars(text) {
  if (text === null || text === undefined) return "—";
  const [whole, fraction = ""] = String(text).split(".");
  const kept = fraction.replace(/0+$/, "");
  return `$${whole}.${kept.length > 2 ? kept : kept.padEnd(2, "0")}`;
}

function number(value) {
  return value === null || value === undefined ? "—" : Number(value).toLocaleString("en-US");
}

function when(text) {
  if (!text) return "—";
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? text : date.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function statusBadge(status) {
  const kind = { active: "good", ok: "good", rejected_by_provider: "bad", disabled: "warn", revoked: "bad",
    provider_error: "bad", interrupted: "warn", client_cancelled: "warn", pending: "warn",
    match: "good", differs: "bad", only_in_keyward: "bad", only_in_provider: "bad" }[status] || "";
  const label = status === "rejected_by_provider" ? "Rejected by provider" : status;
  return h("span", { class: `badge ${kind}`, text: label });
}

function table(headers, rows) {
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((header) =>
      h("th", { scope: "col", class: header.num ? "num" : undefined, text: header.label ?? header })))),
    h("tbody", {}, rows));
}

function cell(value, numeric) {
  return h("td", { class: numeric ? "num" : undefined }, value instanceof Node ? value : String(value ?? "—"));
}

function field(label, input) {
  return h("label", {}, label, input);
}

class SessionEnded extends Error {}

class ApiFailure extends Error {
  constructor(text, status) { super(text); this.status = status; }
}

async function api(method, path, body, { raw = false } = {}) {
  const headers = { accept: "application/json", "x-keyward-csrf": state.session?.csrf_token || "" };
  const options = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 401 && state.session?.signed_in) {
    await showSignIn("Your session has ended; sign in again. The last action was not carried out.");
    throw new SessionEnded();
  }
  if (!response.ok) {
    let text = `The server answered ${response.status}.`;
    try { text = (await response.json()).error?.message || text; } catch { /* not JSON */ }
    throw new ApiFailure(text, response.status);
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

// Runs an action from a form or button; shows its result (or the API's own words) in `where`.
async function act(where, button, action, success) {
  if (button) button.disabled = true;
  where.replaceChildren();
  try {
    const result = await action();
    if (success) where.append(message("ok", typeof success === "function" ? success(result) : success));
    return result;
  } catch (error) {
    if (!(error instanceof SessionEnded)) where.append(message("error", error.message));
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

function every(milliseconds, task) {
  state.timers.push(setInterval(() => task().catch(() => {}), milliseconds));
}

function tenantPath(suffix = "") {
  return `/admin/v1/tenants/${encodeURIComponent(currentTenant())}${suffix}`;
}

function currentTenant() {
  const asked = new URLSearchParams(location.search).get("tenant");
  if (asked) return asked;
  if (state.session?.role === "tenant_admin") return state.session.tenant_id;
  return state.tenants[0]?.id || "";
}

// ---- navigation ----------------------------------------------------------------------------

const VIEWS = [
  { path: "overview", title: "Overview", render: overview },
  { path: "credentials", title: "Credentials", render: credentials },
  { path: "keys", title: "Platform keys", render: platformKeys },
  { path: "budgets", title: "Budgets", render: budgets },
  { path: "routes", title: "Routes", render: routes },
  { path: "departments", title: "Departments", render: departments },
  { path: "usage", title: "Usage", render: usage },
  { path: "reconciliation", title: "Reconciliation", render: reconciliation },
  { path: "knowledge", title: "Knowledge bases", render: knowledge },
  { path: "connectors", title: "Connectors", render: connectors },
  { path: "audit", title: "Audit log", render: audit },
  { path: "tenants", title: "Tenants", render: tenants, operator: true },
  { path: "master-key", title: "Master key", render: masterKey, operator: true },
];

function href(view) {
  const tenant = new URLSearchParams(location.search).get("tenant");
  return `/console/${view}${tenant ? `?tenant=${encodeURIComponent(tenant)}` : ""}`;
}

function go(url) {
  history.pushState({}, "", url);
  render();
}

function drawNav(active) {
  nav.replaceChildren();
  for (const view of VIEWS) {
    if (view.operator && state.session.role !== "operator") continue;
    nav.append(h("a", {
      href: href(view.path), "aria-current": view.path === active ? "page" : undefined, text: view.title,
      onclick: (event) => { event.preventDefault(); go(event.currentTarget.getAttribute("href")); },
    }));
  }
  if (state.session.role === "operator" && state.tenants.length) {
    const select = h("select", { "aria-label": "Tenant", onchange: () => {
      const url = new URL(location.href);
      url.searchParams.set("tenant", select.value);
      go(url.pathname + url.search);
    } }, state.tenants.map((tenant) =>
      h("option", { value: tenant.id, selected: tenant.id === currentTenant(), text: `${tenant.name} (${tenant.id})` })));
    nav.append(field("Tenant", select));
  }
  nav.hidden = false;
}

async function render() {
  state.timers.forEach(clearInterval);
  state.timers = [];
  const name = location.pathname.replace(/^\/console\/?/, "").split("/")[0] || "overview";
  const view = VIEWS.find((candidate) => candidate.path === name) || VIEWS[0];
  document.title = `${view.title} · Keyward console`;
  drawNav(view.path);
  main.replaceChildren(h("h1", { text: view.title }));
  const body = h("div", {});
  main.append(body);
  try {
    if (view.operator && state.session.role !== "operator") throw new ApiFailure("This page is for the operator.", 403);
    if (!view.operator && !currentTenant()) {
      body.append(message("error", "No tenant yet: create one on the Tenants page."));
      return;
    }
    await view.render(body);
  } catch (error) {
    if (!(error instanceof SessionEnded)) body.append(message("error", error.message));
  }
  main.focus({ preventScroll: true });
}

// ---- sign-in -------------------------------------------------------------------------------

async function loadSession() {
  state.session = await api("GET", "/console/api/session");
  if (state.session.signed_in && state.session.role === "operator") {
    state.tenants = (await api("GET", "/admin/v1/tenants?limit=500")).data;
  }
}

async function showSignIn(notice) {
  state.timers.forEach(clearInterval);
  state.timers = [];
  state.session = null;
  await loadSession();
  nav.hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("who").textContent = "";
  document.title = "Sign in · Keyward console";
  const token = h("input", { id: "token", type: "password", autocomplete: "off", spellcheck: "false", required: true });
  const result = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "submit", text: "Sign in" });
  const form = h("form", { class: "card sign-in", onsubmit: async (event) => {
    event.preventDefault();
    const done = await act(result, button, () => api("POST", "/console/api/session", { token: token.value }));
    token.value = "";
    if (done) { state.session = done; await start(); }
  } },
  h("h1", { text: "Sign in to the Keyward console" }),
  notice ? message("error", notice) : null,
  h("p", { class: "muted", text: "Paste a tenant admin key (kw_…) or the operator token. It is exchanged for a session and never stored in this browser." }),
  field("Admin key or operator token", token), h("p", {}, button), result);
  main.replaceChildren(form);
  token.focus();
}

async function start() {
  if (state.session.role === "operator" && !state.tenants.length) {
    state.tenants = (await api("GET", "/admin/v1/tenants?limit=500")).data;
  }
  const who = state.session.role === "operator" ? "Operator" : `Tenant admin · ${state.session.tenant_id}`;
  document.getElementById("who").textContent = who;
  document.getElementById("sign-out").hidden = false;
  if (!location.pathname.startsWith("/console/") || location.pathname === "/console/") {
    history.replaceState({}, "", href("overview"));
  }
  await render();
}

document.getElementById("sign-out").addEventListener("click", async () => {
  try { await api("DELETE", "/console/api/session"); } catch { /* ended anyway */ }
  await showSignIn();
});

window.addEventListener("popstate", () => { if (state.session?.signed_in) render(); });

// ---- overview ------------------------------------------------------------------------------

function monthStart() {
  const now = new Date();
  return `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, "0")}-01`;
}

function today() {
  return new Date().toISOString().slice(0, 10);
}

async function overview(body) {
  const [month, statuses, budgetList, credentialList] = await Promise.all([
    api("GET", tenantPath(`/usage?group_by=day&from=${monthStart()}`)),
    api("GET", tenantPath(`/usage?group_by=status&from=${today()}`)),
    api("GET", tenantPath("/budgets")),
    api("GET", tenantPath("/credentials?limit=500")),
  ]);
  const spent = month.data.reduce((sum, day) => sum + day.cost_micro_usd, 0);
  const calls = statuses.data.reduce((sum, group) => sum + group.requests, 0);
  const errors = statuses.data.filter((group) => !["ok", "pending"].includes(group.group))
    .reduce((sum, group) => sum + group.requests, 0);
  const attention = credentialList.data.filter((credential) => credential.status !== "active");
  body.append(h("div", { class: "grid" },
    h("div", { class: "card" }, h("div", { class: "muted", text: "Spend this month (UTC)" }), h("div", { class: "figure", text: usd(spent) })),
    h("div", { class: "card" }, h("div", { class: "muted", text: "Calls today" }), h("div", { class: "figure", text: number(calls) })),
    h("div", { class: "card" }, h("div", { class: "muted", text: "Errors today" }), h("div", { class: "figure", text: number(errors) })),
    h("div", { class: `card ${attention.length ? "attention" : ""}` }, h("div", { class: "muted", text: "Credentials needing attention" }),
      h("div", { class: "figure", text: number(attention.length) }))));
  body.append(h("h2", { text: "Caps" }), budgetTable(budgetList.data));
  if (attention.length) {
    body.append(h("h2", { text: "Credentials needing attention" }), table(["Label", "Provider", "Status", "Since"],
      attention.map((credential) => h("tr", {}, cell(credential.label), cell(credential.provider),
        cell(statusBadge(credential.status)), cell(when(credential.status_changed_at))))));
  }
}

// ---- credentials ---------------------------------------------------------------------------

const PROVIDERS = ["openai", "azure-openai", "anthropic", "bedrock", "mistral", "groq", "openai-compatible"];

function credentialRow(credential, result, refresh, lastUsed) {
  const post = (action, text) => (event) => act(result, event.currentTarget,
    () => api("POST", tenantPath(`/credentials/${credential.id}/${action}`)), text).then(refresh);
  const rotateSecret = h("input", { type: "password", autocomplete: "off", placeholder: "new secret", "aria-label": `New secret for ${credential.label}` });
  const rotate = h("form", { class: "inline", onsubmit: async (event) => {
    event.preventDefault();
    const done = await act(result, event.submitter, () =>
      api("POST", tenantPath(`/credentials/${credential.id}/rotate`), { secret: rotateSecret.value }),
    `Credential ${credential.label} rotated.`);
    if (done) rotateSecret.value = "";
    refresh();
  } }, rotateSecret, h("button", { type: "submit", class: "secondary", text: "Rotate" }));
  const rejected = credential.status === "rejected_by_provider";
  return h("tr", { class: rejected ? "attention" : undefined, "data-credential": credential.label },
    cell(credential.label), cell(credential.provider), cell(h("code", { text: credential.fingerprint || credential.secret_ref || "—" })),
    cell(h("span", {}, statusBadge(credential.status),
      rejected ? h("div", { class: "muted", text: `The provider refused this key at ${when(credential.status_changed_at)}: rotate it.` }) : null)),
    cell(when(credential.rotated_at || credential.created_at)), cell(lastUsed.get(credential.id) || "—"),
    cell(h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary", text: "Verify", onclick: (event) => act(result, event.currentTarget,
        () => api("POST", tenantPath(`/credentials/${credential.id}/verify`)),
        (answer) => `Verified ${credential.label}: ${answer.status}.`).then(refresh) }),
      credential.status === "disabled"
        ? h("button", { type: "button", class: "secondary", text: "Enable", onclick: post("enable", `Enabled ${credential.label}.`) })
        : h("button", { type: "button", class: "secondary", text: "Disable", onclick: post("disable", `Disabled ${credential.label}.`) }),
      rotate)));
}

async function credentials(body) {
  const result = h("div", { "aria-live": "polite" });
  const rows = h("tbody", {});
  const lastUsed = new Map();
  let last = "";
  const refresh = async () => {
    const list = await api("GET", tenantPath("/credentials?limit=500"));
    const snapshot = JSON.stringify(list.data);
    if (snapshot === last) return;
    last = snapshot;
    rows.replaceChildren(...list.data.map((credential) => credentialRow(credential, result, refresh, lastUsed)));
  };
  // When each credential last served a call: its newest ledger row (read once per visit).
  const loadLastUsed = async () => {
    const list = await api("GET", tenantPath("/credentials?limit=500"));
    await Promise.all(list.data.map(async (credential) => {
      const page = await api("GET", tenantPath(`/usage?limit=1&credential_id=${encodeURIComponent(credential.id)}`));
      if (page.data.length) lastUsed.set(credential.id, when(page.data[0].time));
    }));
    last = "";
    await refresh();
  };
  const listing = h("table", {}, h("thead", {}, h("tr", {},
    ["Label", "Provider", "Fingerprint", "Status", "Key since", "Last used", "Actions"].map((label) => h("th", { scope: "col", text: label })))), rows);
  const label = h("input", { required: true, autocomplete: "off" });
  const provider = h("select", {}, PROVIDERS.map((name) => h("option", { value: name, text: name })));
  const baseUrl = h("input", { type: "url", placeholder: "optional", autocomplete: "off" });
  const secret = h("input", { type: "password", autocomplete: "off", required: true });
  const connected = h("div", { "aria-live": "polite" });
  const connect = h("form", { class: "card inline", onsubmit: async (event) => {
    event.preventDefault();
    const payload = { label: label.value.trim(), provider: provider.value, secret: secret.value };
    if (baseUrl.value.trim()) payload.base_url = baseUrl.value.trim();
    const done = await act(connected, event.submitter, () => api("POST", tenantPath("/credentials"), payload),
      (answer) => `Connected ${answer.label} (fingerprint ${answer.fingerprint}). The secret is sealed and will not be shown again.`);
    secret.value = "";
    if (done) { label.value = ""; baseUrl.value = ""; await refresh(); }
  } }, field("Label", label), field("Provider", provider), field("Base URL", baseUrl), field("Secret (API key)", secret),
  h("button", { type: "submit", text: "Connect" }));
  body.append(h("h2", { text: "Connect a provider key" }), connect, connected, h("h2", { text: "Credentials" }), result, listing);
  await refresh();
  loadLastUsed().catch(() => {});
  // Twice a second: a key the provider just rejected shows within a second.
  every(500, refresh);
}

// ---- platform keys -------------------------------------------------------------------------

function shownOnce(issued, close) {
  const copied = h("span", { role: "status" });
  return h("div", { class: "card once", role: "alert" },
    h("strong", { text: "Copy this key now: Keyward keeps only its hash and will never show it again." }),
    h("code", { id: "issued-key", text: issued.key }),
    h("div", { class: "actions" },
      h("button", { type: "button", text: "Copy", onclick: async () => {
        try { await navigator.clipboard.writeText(issued.key); copied.textContent = "Copied."; }
        catch { copied.textContent = "Copy failed: select the key and copy it by hand."; }
      } }),
      h("button", { type: "button", class: "secondary", text: "I have stored it", onclick: close }), copied));
}

function keyRow(key, result, refresh) {
  const rpm = h("input", { type: "number", min: 0, value: key.rpm_limit ?? "", "aria-label": `Requests per minute for ${key.name || key.prefix}`, size: 6 });
  const tpm = h("input", { type: "number", min: 0, value: key.tpm_limit ?? "", "aria-label": `Tokens per minute for ${key.name || key.prefix}`, size: 8 });
  const limits = h("form", { class: "inline", onsubmit: (event) => {
    event.preventDefault();
    const value = (input) => (input.value === "" ? null : Number(input.value));
    act(result, event.submitter, () => api("PUT", tenantPath(`/keys/${key.id}/limits`), { rpm_limit: value(rpm), tpm_limit: value(tpm) }),
      `Limits of ${key.name || key.prefix} saved.`).then(refresh);
  } }, rpm, tpm, h("button", { type: "submit", class: "secondary", text: "Save limits" }));
  return h("tr", {}, cell(key.name || "—"), cell(h("code", { text: key.prefix })), cell(key.role), cell(key.department_id || "—"),
    cell(key.models ? key.models.join(", ") : "all"), cell(statusBadge(key.status)), cell(when(key.created_at)),
    cell(key.status === "active" ? h("div", { class: "actions" }, limits,
      h("button", { type: "button", class: "danger", text: "Revoke", onclick: (event) => {
        if (!confirm(`Revoke ${key.name || key.prefix}? Calls with it stop at once.`)) return;
        act(result, event.currentTarget, () => api("POST", tenantPath(`/keys/${key.id}/revoke`)), `Revoked ${key.name || key.prefix}.`).then(refresh);
      } })) : "—"));
}

async function platformKeys(body) {
  const result = h("div", { "aria-live": "polite" });
  const rows = h("tbody", {});
  const refresh = async () => {
    const list = await api("GET", tenantPath("/keys?limit=500"));
    rows.replaceChildren(...list.data.map((key) => keyRow(key, result, refresh)));
  };
  const name = h("input", { autocomplete: "off" });
  const role = h("select", {}, h("option", { value: "member", text: "member (model calls)" }), h("option", { value: "admin", text: "admin (manages this tenant)" }));
  const department = h("input", { autocomplete: "off", placeholder: "optional" });
  const models = h("input", { autocomplete: "off", placeholder: "all (or a comma list)" });
  const once = h("div", {});
  const issuedResult = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "card inline", onsubmit: async (event) => {
    event.preventDefault();
    const payload = { role: role.value };
    if (name.value.trim()) payload.name = name.value.trim();
    if (department.value.trim()) payload.department = department.value.trim();
    if (models.value.trim()) payload.models = models.value.split(",").map((model) => model.trim()).filter(Boolean);
    const issued = await act(issuedResult, event.submitter, () => api("POST", tenantPath("/keys"), payload));
    if (issued) {
      once.replaceChildren(shownOnce(issued, () => once.replaceChildren()));
      name.value = ""; models.value = "";
      await refresh();
    }
  } }, field("Name", name), field("Role", role), field("Department", department), field("Allowed models", models),
  h("button", { type: "submit", text: "Issue key" }));
  body.append(h("h2", { text: "Issue a platform key" }), form, issuedResult, once, h("h2", { text: "Keys" }), result,
    h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Prefix", "Role", "Department", "Models", "Status", "Created", "Limits (rpm, tpm) and actions"]
      .map((label) => h("th", { scope: "col", text: label })))), rows));
  await refresh();
}

// ---- budgets -------------------------------------------------------------------------------

function spendBar(budget) {
  const spent = Number(budget.spent_usd), reserved = Number(budget.reserved_usd);
  const hard = budget.hard_limit_usd === null ? null : Number(budget.hard_limit_usd);
  const soft = budget.soft_limit_usd === null ? null : Number(budget.soft_limit_usd);
  const scale = Math.max(hard ?? 0, soft ?? 0, spent + reserved, 0.000001);
  const bar = h("div", { class: `bar ${hard !== null && spent >= hard ? "over" : ""}`, role: "img",
    "aria-label": `${dollars(budget.spent_usd)} spent${hard !== null ? ` of a ${dollars(budget.hard_limit_usd)} hard cap` : ""}` });
  const used = h("div", { class: "used" });
  used.style.width = `${Math.min(100, (100 * spent) / scale)}%`;
  const held = h("div", { class: "reserved" });
  held.style.left = used.style.width;
  held.style.width = `${Math.min(100, (100 * reserved) / scale)}%`;
  bar.append(used, held);
  if (soft !== null) {
    const mark = h("div", { class: "soft" });
    mark.style.left = `${Math.min(99.5, (100 * soft) / scale)}%`;
    bar.append(mark);
  }
  return bar;
}

function budgetTable(list) {
  if (!list.length) return h("p", { class: "muted", text: "No budgets: calls are not capped. Set one on the Budgets page." });
  return table(["Scope", "Period", "Window", { label: "Spent", num: true }, { label: "In flight", num: true },
    { label: "Soft", num: true }, { label: "Hard", num: true }, "Use"],
  list.map((budget) => h("tr", {}, cell(budget.scope), cell(budget.period), cell(budget.window),
    cell(dollars(budget.spent_usd), true), cell(dollars(budget.reserved_usd), true),
    cell(dollars(budget.soft_limit_usd), true), cell(dollars(budget.hard_limit_usd), true), cell(spendBar(budget)))));
}

async function budgets(body) {
  const listing = h("div", {});
  const refresh = async () => listing.replaceChildren(budgetTable((await api("GET", tenantPath("/budgets"))).data));
  const scope = h("input", { value: "tenant", required: true, autocomplete: "off" });
  const period = h("select", {}, ["month", "day", "total"].map((value) => h("option", { value, text: value })));
  const hard = h("input", { inputmode: "decimal", placeholder: "none", autocomplete: "off" });
  const soft = h("input", { inputmode: "decimal", placeholder: "none", autocomplete: "off" });
  const result = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "card inline", onsubmit: async (event) => {
    event.preventDefault();
    const payload = { scope: scope.value.trim(), period: period.value,
      hard_limit_usd: hard.value.trim() || null, soft_limit_usd: soft.value.trim() || null };
    if (await act(result, event.submitter, () => api("PUT", tenantPath("/budgets"), payload), "Budget saved.")) await refresh();
  } }, field("Scope (tenant, department:NAME, key:ID)", scope), field("Period", period), field("Hard cap (USD)", hard),
  field("Soft limit (USD)", soft), h("button", { type: "submit", text: "Save budget" }));
  body.append(h("h2", { text: "Set a budget" }), form, result, h("h2", { text: "Budgets" }), listing);
  await refresh();
}

// ---- routes and departments ---------------------------------------------------------------

function targetsText(targets, labels) {
  return targets.map((target) => `${labels.get(target.credential) || target.credential}/${target.model}`).join(" → ");
}

async function routes(body) {
  const result = h("div", { "aria-live": "polite" });
  const listing = h("div", {});
  const refresh = async () => {
    const [list, credentialList] = await Promise.all([
      api("GET", tenantPath("/routes?limit=500")), api("GET", tenantPath("/credentials?limit=500"))]);
    const labels = new Map(credentialList.data.map((credential) => [credential.id, credential.label]));
    listing.replaceChildren(list.data.length
      ? table(["Name clients call", "Targets, in order (later ones are fallbacks)", "Updated"],
        list.data.map((route) => h("tr", {}, cell(route.model), cell(targetsText(route.targets, labels)), cell(when(route.updated_at)))))
      : h("p", { class: "muted", text: "No routes: clients address models as credential-label/model." }));
  };
  const name = h("input", { required: true, autocomplete: "off", placeholder: "e.g. chat" });
  const targets = h("input", { required: true, autocomplete: "off", size: 50, placeholder: "team-openai/gpt-4o-mini, team-claude/claude-haiku-4-5" });
  body.append(h("form", { class: "card inline", onsubmit: async (event) => {
    event.preventDefault();
    const parsed = targets.value.split(",").map((text) => text.trim()).filter(Boolean).map((text) => {
      const slash = text.indexOf("/");
      return { credential: text.slice(0, slash), model: text.slice(slash + 1) };
    });
    if (parsed.some((target) => !target.credential || !target.model)) {
      result.replaceChildren(message("error", "Write each target as credential-label/model, separated by commas."));
      return;
    }
    if (await act(result, event.submitter, () => api("PUT", tenantPath(`/routes/${encodeURIComponent(name.value.trim())}`), { targets: parsed }),
      `Route ${name.value.trim()} saved.`)) await refresh();
  } }, field("Name", name), field("Targets (credential/model, in order)", targets), h("button", { type: "submit", text: "Save route" })),
  result, listing);
  await refresh();
}

async function departments(body) {
  const result = h("div", { "aria-live": "polite" });
  const listing = h("div", {});
  const members = h("div", {});
  const showMembers = async (department) => {
    const path = tenantPath(`/departments/${encodeURIComponent(department.id)}/members`);
    const current = await api("GET", path);
    const identities = h("textarea", { rows: 4, cols: 60, "aria-label": `Members of ${department.name}` });
    identities.value = (current.identities || []).join("\n");
    members.replaceChildren(h("form", { class: "card", onsubmit: async (event) => {
      event.preventDefault();
      const list = identities.value.split("\n").map((line) => line.trim()).filter(Boolean);
      await act(result, event.submitter, () => api("PUT", path, { identities: list }), `Members of ${department.name} saved.`);
    } }, h("h2", { text: `Members of ${department.name}` }),
    h("p", { class: "muted", text: "One identity per line: aad:TENANT/OBJECT, email:person@example.com or domain:example.com (chat connectors map people to departments with these)." }),
    identities, h("p", {}, h("button", { type: "submit", text: "Save members" }))));
  };
  const refresh = async () => {
    const list = await api("GET", tenantPath("/departments?limit=500"));
    listing.replaceChildren(list.data.length
      ? table(["Name", "Models allowed", "Created", ""], list.data.map((department) => h("tr", {}, cell(department.name),
        cell(department.models ? department.models.join(", ") : "all"), cell(when(department.created_at)),
        cell(h("button", { type: "button", class: "secondary", text: "Members", onclick: () => showMembers(department)
          .catch((error) => result.replaceChildren(message("error", error.message))) })))))
      : h("p", { class: "muted", text: "No departments yet." }));
  };
  const name = h("input", { required: true, autocomplete: "off" });
  const models = h("input", { autocomplete: "off", placeholder: "all (or a comma list)" });
  body.append(h("form", { class: "card inline", onsubmit: async (event) => {
    event.preventDefault();
    const payload = { name: name.value.trim() };
    if (models.value.trim()) payload.models = models.value.split(",").map((model) => model.trim()).filter(Boolean);
    if (await act(result, event.submitter, () => api("POST", tenantPath("/departments"), payload), `Department ${payload.name} created.`)) {
      name.value = ""; models.value = ""; await refresh();
    }
  } }, field("Department name", name), field("Models allowed", models), h("button", { type: "submit", text: "Create department" })),
  result, listing, members);
  await refresh();
}

// ---- usage ---------------------------------------------------------------------------------

const GROUPS = ["model", "key", "department", "credential", "status", "tag"];

function callDetail(call) {
  const served = `Served by credential ${call.credential_label} (${call.provider}) — this tenant's own key` +
    (call.key_id ? `, called with platform key ${call.key_id}` : ", called by Keyward itself (knowledge or connector)");
  const tokens = (value) => (value === null ? "not reported" : number(value));
  return h("div", { class: "card", id: "call-detail" }, h("h2", { text: `Call ${call.request_id}` }),
    h("p", { text: served }),
    h("dl", { class: "detail" }, [
      ["Time", when(call.time)], ["Status", call.status], ["Endpoint", call.endpoint],
      ["Model requested", call.model_requested], ["Model reported", call.model_reported || "—"],
      ["Department", call.department || "—"], ["Input tokens", tokens(call.input_tokens)],
      ["Cached input tokens", tokens(call.cached_input_tokens)], ["Output tokens", tokens(call.output_tokens)],
      ["Cost", call.cost_micro_usd === null ? "unpriced" : usd(call.cost_micro_usd)], ["Price", call.price_id || "—"],
      ["Latency", call.latency_ms === null ? "—" : `${call.latency_ms} ms`], ["Streamed", call.stream ? "yes" : "no"],
      ["Provider request id", call.provider_request_id || "—"], ["Fallback of", call.fallback_of || "—"],
      ["Tags", Object.entries(call.tags || {}).map(([key, value]) => `${key}=${value}`).join(", ") || "—"],
    ].flatMap(([term, value]) => [h("dt", { text: term }), h("dd", { text: value })])));
}

function callTable(calls, detail) {
  return table(["Time", "Key", "Credential", "Model requested", "Model reported", { label: "Tokens in", num: true },
    { label: "Tokens out", num: true }, { label: "Cost", num: true }, "Status", { label: "Latency", num: true }, "Request id"],
  calls.map((call) => h("tr", { class: "clickable", tabindex: 0, onclick: () => detail.replaceChildren(callDetail(call)),
    onkeydown: (event) => { if (event.key === "Enter") detail.replaceChildren(callDetail(call)); } },
  cell(when(call.time)), cell(call.key_id || "—"), cell(call.credential_label), cell(call.model_requested),
  cell(call.model_reported || "—"), cell(number(call.input_tokens), true), cell(number(call.output_tokens), true),
  cell(call.cost_micro_usd === null ? "unpriced" : usd(call.cost_micro_usd), true), cell(statusBadge(call.status)),
  cell(call.latency_ms === null ? "—" : `${call.latency_ms} ms`, true), cell(h("code", { text: call.request_id })))));
}

async function usage(body) {
  const from = h("input", { type: "date", value: monthStart() });
  const to = h("input", { type: "date", value: today() });
  const group = h("select", {}, GROUPS.map((name) => h("option", { value: name, text: name === "tag" ? "tag (name below)" : name })));
  const tag = h("input", { placeholder: "e.g. team", autocomplete: "off", size: 10 });
  const grouping = () => (group.value === "tag" ? `tag:${tag.value.trim()}` : group.value);
  const model = h("input", { placeholder: "any", autocomplete: "off", size: 14 });
  const key = h("input", { placeholder: "any", autocomplete: "off", size: 14 });
  const credential = h("input", { placeholder: "any", autocomplete: "off", size: 14 });
  const status = h("select", {}, ["", "ok", "provider_error", "client_cancelled", "timeout", "unreachable", "egress_blocked", "interrupted", "pending"]
    .map((value) => h("option", { value, text: value || "any" })));
  const charts = h("div", { class: "charts" });
  const calls = h("div", {});
  const detail = h("div", {});
  const notes = h("div", { "aria-live": "polite" });
  const cursors = [null];
  const range = () => `from=${from.value}&to=${to.value}`;
  const loadCharts = async () => {
    const [days, groups] = await Promise.all([
      api("GET", tenantPath(`/usage?group_by=day&${range()}`)), api("GET", tenantPath(`/usage?group_by=${encodeURIComponent(grouping())}&${range()}`))]);
    const points = days.data.map((day) => ({ label: day.group, value: day.cost_micro_usd }));
    const tokens = days.data.map((day) => ({ label: day.group, value: day.input_tokens + day.output_tokens }));
    charts.replaceChildren(
      h("figure", { class: "card" }, h("figcaption", { text: "Spend per day (USD)" }), columnChart(points, { title: "Spend per day", format: usd })),
      h("figure", { class: "card" }, h("figcaption", { text: "Tokens per day (input + output)" }), columnChart(tokens, { title: "Tokens per day", format: number })),
      h("figure", { class: "card wide" }, h("figcaption", { text: `Spend by ${grouping()}` }),
        barChart(groups.data.map((row) => ({ label: row.group, value: row.cost_micro_usd })), { title: `Spend by ${grouping()}`, format: usd })));
  };
  const loadCalls = async () => {
    const filters = new URLSearchParams({ from: from.value, to: to.value, limit: "50" });
    for (const [name, input] of [["model", model], ["key_id", key], ["credential_id", credential], ["status", status]]) {
      if (input.value.trim()) filters.set(name, input.value.trim());
    }
    if (cursors.at(-1)) filters.set("cursor", cursors.at(-1));
    const page = await api("GET", tenantPath(`/usage?${filters}`));
    const older = h("button", { type: "button", class: "secondary", text: "Older calls", disabled: !page.next_cursor,
      onclick: () => { cursors.push(page.next_cursor); loadCalls().catch(show); } });
    const newer = h("button", { type: "button", class: "secondary", text: "Newer calls", disabled: cursors.length < 2,
      onclick: () => { cursors.pop(); loadCalls().catch(show); } });
    calls.replaceChildren(h("div", { class: "pager" }, newer, older, h("span", { class: "muted", text: `Page ${cursors.length}` })),
      page.data.length ? callTable(page.data, detail) : h("p", { class: "muted", text: "No calls match." }));
  };
  const show = (error) => { if (!(error instanceof SessionEnded)) notes.replaceChildren(message("error", error.message)); };
  const reload = () => { notes.replaceChildren(); cursors.splice(1); return Promise.all([loadCharts(), loadCalls()]).catch(show); };
  const exportCsv = async (event) => {
    await act(notes, event.currentTarget, async () => {
      const response = await api("GET", tenantPath(`/usage?format=csv&${range()}`), undefined, { raw: true });
      const link = h("a", { href: URL.createObjectURL(await response.blob()), download: `keyward-usage-${from.value}-${to.value}.csv` });
      document.body.append(link); link.click(); link.remove();
    }, "Export downloaded.");
  };
  body.append(h("form", { class: "card inline", onsubmit: (event) => { event.preventDefault(); reload(); } },
    field("From", from), field("To", to), field("Group by", group), field("Tag name", tag), field("Model", model), field("Platform key id", key),
    field("Credential id", credential), field("Status", status), h("button", { type: "submit", text: "Show" }),
    h("button", { type: "button", class: "secondary", text: "Export CSV", onclick: exportCsv })),
  notes, charts, h("h2", { text: "Calls" }), detail, calls);
  await reload();
}

// ---- reconciliation ------------------------------------------------------------------------

const FIELDS = ["requests", "input_tokens", "output_tokens", "cost_usd"];

function reconciliationTable(report) {
  return table(["Day", "Model", "Status", ...FIELDS.flatMap((name) => [`${name} (Keyward)`, `${name} (provider)`])],
    report.data.map((line) => {
      const differing = new Set(line.differences.map((difference) => difference.field));
      return h("tr", {}, cell(line.date), cell(line.model), cell(statusBadge(line.status)),
        FIELDS.flatMap((name) => ["keyward", "provider"].map((side) => {
          const td = cell(line[side] ? line[side][name] : "—", true);
          if (differing.has(name)) { td.classList.add("diff"); td.title = `${name} differs`; }
          return td;
        })));
    }));
}

async function reconciliation(body) {
  const provider = h("select", {}, ["openai", "anthropic", "bedrock"].map((value) => h("option", { value, text: value })));
  const files = h("input", { type: "file", multiple: true, accept: ".csv,.json,.jsonl,.txt" });
  const result = h("div", { "aria-live": "polite" });
  const report = h("div", {});
  const form = h("form", { class: "card inline", onsubmit: async (event) => {
    event.preventDefault();
    if (!files.files.length) { result.replaceChildren(message("error", "Choose the provider's export file(s) first.")); return; }
    const progress = h("progress", { class: "progress", "aria-label": "Reading the export" });
    result.replaceChildren(progress);
    const exports = await Promise.all([...files.files].map((file) => file.text()));
    const answer = await act(result, event.submitter, () => api("POST", tenantPath("/reconciliations"), { provider: provider.value, exports }));
    if (!answer) return;
    report.replaceChildren(
      h("p", { text: `${answer.lines} day-model lines from ${answer.from} to ${answer.to}; ${answer.differing_lines} differ. Keyward ${answer.keyward_cost_usd} USD, provider ${answer.provider_cost_usd} USD.` }),
      ...(answer.warnings || []).map((warning) => message("error", warning)),
      reconciliationTable(answer));
  } }, field("Provider", provider), field("Export file(s)", files), h("button", { type: "submit", text: "Reconcile" }));
  body.append(h("p", { class: "muted", text: "Upload the provider's usage or cost export: each UTC day and model is compared with Keyward's ledger, and every difference is highlighted." }),
    form, result, report);
}

// ---- knowledge bases and connectors ---------------------------------------------------------

// Uploads a file as multipart with the session's CSRF token, reporting upload progress
// (fetch has no upload progress; XMLHttpRequest does).
function upload(url, file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.setRequestHeader("x-keyward-csrf", state.session?.csrf_token || "");
    request.upload.addEventListener("progress", (event) => { if (event.lengthComputable) onProgress(event.loaded / event.total); });
    request.addEventListener("load", () => {
      let answer = null;
      try { answer = JSON.parse(request.responseText); } catch { /* not JSON */ }
      if (request.status === 401) { showSignIn("Your session has ended; sign in again. The upload was not stored."); reject(new SessionEnded()); }
      else if (request.status >= 200 && request.status < 300) resolve(answer);
      else if (request.status === 413) reject(new ApiFailure(`${file.name} is larger than this server accepts (server.max_body_bytes); split it or ask the operator.`, 413));
      else reject(new ApiFailure(answer?.error?.message || `The server answered ${request.status}.`, request.status));
    });
    request.addEventListener("error", () => reject(new ApiFailure("The upload failed: the server could not be reached.", 0)));
    const form = new FormData();
    form.append("file", file, file.name);
    request.send(form);
  });
}

function documentsPanel(kb) {
  const base = `/v1/knowledge-bases/${encodeURIComponent(kb.name)}`;
  const result = h("div", { "aria-live": "polite" });
  const rows = h("tbody", {});
  const refresh = async () => {
    const list = await api("GET", `${base}/documents`);
    rows.replaceChildren(...list.data.map((document) => h("tr", {}, cell(document.name), cell(document.content_type),
      cell(number(document.bytes), true), cell(number(document.chunks), true), cell(statusBadge(document.status)),
      cell(h("progress", { max: 1, value: document.progress, "aria-label": `Ingestion of ${document.name}` })),
      cell(document.error || "—"),
      cell(h("button", { type: "button", class: "danger", text: "Delete", onclick: (event) => {
        if (!confirm(`Delete ${document.name} and its chunks?`)) return;
        act(result, event.currentTarget, () => api("DELETE", `${base}/documents/${document.id}`), `Deleted ${document.name}.`).then(refresh);
      } })))));
    return list.data.some((document) => document.status === "ingesting");
  };
  const file = h("input", { type: "file", accept: ".md,.markdown,.txt,text/plain,text/markdown" });
  const progress = h("progress", { max: 1, value: 0, class: "progress", "aria-label": "Upload progress", hidden: true });
  const uploadForm = h("form", { class: "inline", onsubmit: async (event) => {
    event.preventDefault();
    if (!file.files.length) { result.replaceChildren(message("error", "Choose a text or markdown file first.")); return; }
    progress.hidden = false;
    const chosen = file.files[0];
    const done = await act(result, event.submitter, () => upload(`${base}/documents`, chosen, (share) => { progress.value = share; }),
      `Uploaded ${chosen.name}; ingestion progress is shown below.`);
    progress.hidden = true;
    if (done) { file.value = ""; poll(); }
  } }, field("Document (text or markdown)", file), h("button", { type: "submit", text: "Upload" }), progress);
  const query = h("input", { type: "search", autocomplete: "off", required: true });
  const hits = h("div", {});
  const searchForm = h("form", { class: "inline", onsubmit: async (event) => {
    event.preventDefault();
    const answer = await act(result, event.submitter, () => api("POST", `${base}/search`, { query: query.value, top_k: 5 }));
    if (!answer) return;
    hits.replaceChildren(answer.data.length
      ? table([{ label: "Rank", num: true }, "Document", { label: "Score", num: true }],
        answer.data.map((hit, index) => h("tr", {}, cell(index + 1, true), cell(hit.document_name), cell(hit.score.toFixed(3), true))))
      : h("p", { class: "muted", text: "Nothing matched." }));
  } }, field("Search (shows which documents match, never their text)", query), h("button", { type: "submit", text: "Search" }));
  let polling = false;
  const poll = async () => {
    if (polling) return;
    polling = true;
    try { while (await refresh() && panel.isConnected) await new Promise((done) => setTimeout(done, 1000)); }
    finally { polling = false; }
  };
  const panel = h("div", { class: "card" }, h("h2", { text: `Documents of ${kb.name}` }), uploadForm, searchForm, hits, result,
    h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Type", "Bytes", "Chunks", "Status", "Ingested", "Error", ""]
      .map((label) => h("th", { scope: "col", text: label })))), rows));
  poll().catch((error) => { if (!(error instanceof SessionEnded)) result.replaceChildren(message("error", error.message)); });
  return panel;
}

async function knowledge(body) {
  const list = await api("GET", tenantPath("/knowledge-bases"));
  const panel = h("div", {});
  const admin = state.session.role === "tenant_admin";
  body.append(list.data.length ? table(["Name", "Department", "Embedding model", { label: "Documents", num: true }, { label: "Chunks", num: true }, "Created", ""],
    list.data.map((kb) => h("tr", {}, cell(kb.name), cell(kb.department || "—"), cell(kb.embedding ? `${kb.embedding.credential}/${kb.embedding.model}` : "—"),
      cell(number(kb.documents), true), cell(number(kb.chunks), true), cell(when(kb.created_at)),
      cell(admin ? h("button", { type: "button", class: "secondary", text: "Documents", onclick: () => panel.replaceChildren(documentsPanel(kb)) }) : "—"))))
    : h("p", { class: "muted", text: "No knowledge bases. Create one with `keyward kb create` or the admin API." }));
  body.append(panel, h("p", { class: "muted", text: admin
    ? "Document text is never shown here: only names, sizes and ingestion progress."
    : "Documents are managed by the tenant's admins (sign in with a tenant admin key)." }));
}

async function connectors(body) {
  const result = h("div", { "aria-live": "polite" });
  const listing = h("div", {});
  const refresh = async () => {
    const list = await api("GET", tenantPath("/connectors"));
    listing.replaceChildren(list.data.length ? table(["Name", "Kind", "App id", "Model", "Status", "Messages endpoint", "Actions"],
      list.data.map((connector) => h("tr", {}, cell(connector.name), cell(connector.kind), cell(connector.app_id), cell(connector.model),
        cell(statusBadge(connector.status)), cell(h("code", { text: connector.endpoint })),
        cell(h("button", { type: "button", class: "secondary", text: connector.status === "disabled" ? "Enable" : "Disable",
          onclick: (event) => act(result, event.currentTarget, () => api("POST",
            tenantPath(`/connectors/${connector.id}/${connector.status === "disabled" ? "enable" : "disable"}`)), "Saved.").then(refresh) })))))
      : h("p", { class: "muted", text: "No chat connectors. Create one with `keyward connector create`." }));
  };
  body.append(result, listing);
  await refresh();
}

// ---- audit log -----------------------------------------------------------------------------

async function audit(body) {
  const listing = h("div", {});
  const result = h("div", { "aria-live": "polite" });
  const load = async (cursor) => {
    const page = await api("GET", tenantPath(`/audit?limit=100${cursor ? `&cursor=${cursor}` : ""}`));
    listing.replaceChildren(table([{ label: "#", num: true }, "Time", "Actor", "Action", "Target", "Outcome"],
      page.data.map((entry) => h("tr", {}, cell(entry.seq, true), cell(when(entry.at)), cell(entry.actor), cell(entry.action),
        cell(entry.target), cell(entry.outcome)))),
    h("div", { class: "pager" }, h("button", { type: "button", class: "secondary", text: "Next entries", disabled: !page.next_cursor,
      onclick: () => load(page.next_cursor).catch((error) => result.replaceChildren(message("error", error.message))) })));
  };
  if (state.session.role === "operator") {
    body.append(h("p", {}, h("button", { type: "button", text: "Verify the chain", onclick: (event) => act(result, event.currentTarget,
      () => api("GET", "/admin/v1/audit/verify"), (answer) => answer.intact
        ? `Chain intact: ${answer.entries} entries, head hash ${answer.head_hash}.`
        : `Chain BROKEN at entry ${answer.broken_at_seq}: ${answer.reason}.`) })));
  } else {
    body.append(h("p", { class: "muted", text: "Entries are hash-chained across the deployment; the operator verifies the whole chain." }));
  }
  body.append(result, listing);
  await load();
}

// ---- operator ------------------------------------------------------------------------------

async function tenants(body) {
  const result = h("div", { "aria-live": "polite" });
  const listing = h("div", {});
  const refresh = async () => {
    state.tenants = (await api("GET", "/admin/v1/tenants?limit=500")).data;
    listing.replaceChildren(table(["Name", "Id", "Created", ""], state.tenants.map((tenant) => h("tr", {}, cell(tenant.name),
      cell(h("code", { text: tenant.id })), cell(when(tenant.created_at)),
      cell(h("a", { href: `/console/overview?tenant=${encodeURIComponent(tenant.id)}`, text: "Open",
        onclick: (event) => { event.preventDefault(); go(event.currentTarget.getAttribute("href")); } }))))));
  };
  const name = h("input", { required: true, autocomplete: "off" });
  body.append(h("form", { class: "card inline", onsubmit: async (event) => {
    event.preventDefault();
    if (await act(result, event.submitter, () => api("POST", "/admin/v1/tenants", { name: name.value.trim() }),
      (tenant) => `Created tenant ${tenant.name} (${tenant.id}).`)) { name.value = ""; await refresh(); }
  } }, field("New tenant name", name), h("button", { type: "submit", text: "Create tenant" })), result, listing);
  await refresh();
}

async function masterKey(body) {
  const result = h("div", { "aria-live": "polite" });
  const status = h("div", {});
  const refresh = async () => {
    const key = await api("GET", "/admin/v1/masterkey");
    const job = key.rewrap;
    const progress = h("progress", { class: "progress", max: Math.max(1, job.total || 0), value: job.done || 0,
      "aria-label": "Re-wrap progress" });
    status.replaceChildren(
      h("p", { text: `Primary version ${key.primary}. Re-wrap: ${job.state}${job.total ? ` — ${job.done} of ${job.total} rows` : ""}${job.failed ? `, ${job.failed} failed` : ""}.` }),
      progress,
      table([{ label: "Version", num: true }, "State", { label: "Rows sealed", num: true }, "Key check value"],
        key.versions.map((version) => h("tr", {}, cell(version.version, true), cell(version.state), cell(number(version.rows), true),
          cell(h("code", { text: version.check_value }))))));
  };
  body.append(h("p", {}, h("button", { type: "button", class: "danger", text: "Rotate the master key", onclick: (event) => {
    if (!confirm("Seal new secrets under a new master key version and re-wrap every row?")) return;
    act(result, event.currentTarget, () => api("POST", "/admin/v1/masterkey/rotate", {}), "Rotation started; progress below.").then(refresh);
  } })), result, status);
  await refresh();
  every(2000, refresh);
}

// ---- start ---------------------------------------------------------------------------------

(async () => {
  try {
    await loadSession();
    if (state.session.signed_in) await start();
    else await showSignIn();
  } catch (error) {
    main.replaceChildren(message("error", `The console could not start: ${error.message}`));
  }
})();
