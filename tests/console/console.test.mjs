// The web console in a real browser: Debian's Chromium driven by playwright-core, against the
// real `keyward serve` and the mock provider, both started here on loopback. A tenant admin
// signs in, connects a credential, issues a key, a call is made with the official OpenAI SDK,
// the call shows in usage, a provider rejection shows on the credentials page, the key is
// revoked, the admin signs out; then the operator's pages. Along the way: cookie flags, the
// CSP, CSRF refusals, another tenant's id, no secret or prompt in any page, no request leaving
// the origin, and axe-core on every page. Screenshots go to target/console-screenshots/.
//
// Environment: KEYWARD_BIN and KEYWARD_MOCK_BIN (scripts/test.sh builds both);
// CHROMIUM_BIN (default /usr/bin/chromium).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import OpenAI from "openai";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const shots = path.join(root, "target", "console-screenshots");
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const OPERATOR = `console-operator-${crypto.randomUUID()}`;
const SECRET = `sk-proj-console-${crypto.randomUUID().replaceAll("-", "")}`;
const CANARY = `CANARY-PROMPT-${crypto.randomUUID()}`;
const DOCUMENT_CANARY = `CANARY-DOCUMENT-${crypto.randomUUID()}`;

const processes = [];
let keyward; // origin, e.g. http://127.0.0.1:PORT
let mock;
let browser;

// Starts a program and resolves with the first stdout value `ready` finds.
function start(program, args, env, cwd, ready) {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env, cwd, stdio: ["ignore", "pipe", "inherit"] });
    processes.push(child);
    const timer = setTimeout(() => reject(new Error(`${program} did not start`)), 60_000);
    child.on("exit", (code) => reject(new Error(`${program} exited with ${code}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      let entry;
      try { entry = JSON.parse(line); } catch { return; }
      const value = ready(entry);
      if (value) { clearTimeout(timer); resolve(value); }
    });
  });
}

async function operator(method, url, body) {
  const response = await fetch(keyward + url, {
    method,
    headers: { authorization: `Bearer ${OPERATOR}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${url}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

before(async () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("KEYWARD_")));
  const dir = mkdtempSync(path.join(tmpdir(), "keyward-console-"));
  mkdirSync(shots, { recursive: true });
  mock = `http://${await start(process.env.KEYWARD_MOCK_BIN, ["--listen", "127.0.0.1:0"], env, dir,
    (entry) => entry.listening)}`;
  const address = await start(process.env.KEYWARD_BIN, ["serve"], {
    ...env,
    KEYWARD_SERVER_LISTEN: "127.0.0.1:0",
    KEYWARD_ADMIN_TOKEN: OPERATOR,
    KEYWARD_EGRESS_ALLOW_PRIVATE: "127.0.0.1",
  }, dir, (entry) => (entry.message === "keyward listening" ? entry.address : undefined));
  keyward = `http://${address}`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  for (const child of processes) child.kill("SIGTERM");
});

// A browser context that records every request and every page's HTML.
async function session() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const requests = [];
  const html = [];
  page.on("request", (request) => requests.push(request.url()));
  page.on("dialog", (dialog) => dialog.accept());
  const capture = async () => html.push(await page.content());
  return { context, page, requests, html, capture };
}

async function signIn(page, token) {
  await page.goto(`${keyward}/console/`);
  await page.getByRole("heading", { name: "Sign in to the Keyward console" }).waitFor();
  await page.getByLabel("Admin key or operator token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Overview" }).waitFor();
}

async function open(page, title) {
  await page.getByRole("navigation").getByRole("link", { name: title, exact: true }).click();
  await page.getByRole("heading", { level: 1, name: title }).waitFor();
}

async function accessible(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const serious = result.violations.filter((violation) => ["serious", "critical"].includes(violation.impact));
  assert.deepEqual(serious.map((violation) => `${violation.id}: ${violation.help}`), [], `axe on ${name}`);
}

async function shoot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function visit(s, title, name) {
  await open(s.page, title);
  await s.page.waitForLoadState("networkidle");
  await accessible(s.page, name);
  await shoot(s.page, name);
  await s.capture();
}

test("a tenant admin does the quickstart in the console", async () => {
  const tenant = (await operator("POST", "/admin/v1/tenants", { name: "acme" })).id;
  const other = (await operator("POST", "/admin/v1/tenants", { name: "globex" })).id;
  const admin = (await operator("POST", `/admin/v1/tenants/${tenant}/keys`, { role: "admin", name: "console admin" })).key;
  const s = await session();
  const { page } = s;

  const first = await page.goto(`${keyward}/console/`);
  const csp = first.headers()["content-security-policy"];
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe/);
  assert.equal(first.headers()["x-frame-options"], "DENY");
  await page.getByRole("heading", { name: "Sign in to the Keyward console" }).waitFor();
  await accessible(page, "sign-in");
  await shoot(page, "sign-in");
  await page.getByLabel("Admin key or operator token").fill("kw_wrongwrongwrongwrong");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("sign in with a tenant admin key").waitFor();
  await signIn(page, `  ${admin}  `);

  const cookies = await s.context.cookies();
  const cookie = cookies.find((candidate) => candidate.name === "kw_console");
  assert.ok(cookie, "session cookie set");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.equal(await page.evaluate(() => document.cookie.includes("kw_console=")), false, "not readable by script");
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  assert.ok(!stored.includes(admin), "the key is not in browser storage");
  await accessible(page, "overview");
  await shoot(page, "overview");
  await s.capture();

  // Connect a credential: the secret is typed once and never shown again.
  await open(page, "Credentials");
  await page.getByLabel("Label").fill("team-openai");
  await page.getByLabel("Provider").selectOption("openai");
  await page.getByLabel("Base URL").fill(`${mock}/v1`);
  await page.getByLabel("Secret (API key)").fill(SECRET);
  await page.getByRole("button", { name: "Connect" }).click();
  await page.getByText("Connected team-openai").waitFor();
  assert.equal(await page.getByLabel("Secret (API key)").inputValue(), "");
  await page.locator("tr[data-credential='team-openai']").getByText("active").waitFor();
  await accessible(page, "credentials");
  await shoot(page, "credentials");
  await s.capture();

  // Issue a key: shown once with a copy button, gone once dismissed.
  await open(page, "Platform keys");
  await page.getByLabel("Name").fill("sdk");
  await page.getByRole("button", { name: "Issue key" }).click();
  const issued = (await page.locator("#issued-key").textContent()).trim();
  assert.match(issued, /^kw_/);
  await page.getByRole("button", { name: "Copy" }).waitFor();
  await page.getByText("will never show it again").waitFor();
  await accessible(page, "keys");
  await shoot(page, "keys-issued");
  await page.getByRole("button", { name: "I have stored it" }).click();
  assert.ok(!(await page.content()).includes(issued), "the key is not shown after its one display");
  await s.capture();

  // A route for a bare name, and a department with its members.
  await open(page, "Routes");
  await page.getByLabel("Name", { exact: true }).fill("chat");
  await page.getByLabel("Targets (credential/model, in order)").fill("team-openai/gpt-4o-mini");
  await page.getByRole("button", { name: "Save route" }).click();
  await page.getByRole("cell", { name: "team-openai/gpt-4o-mini" }).waitFor();
  await accessible(page, "routes");
  await s.capture();
  await open(page, "Departments");
  await page.getByLabel("Department name").fill("sales");
  await page.getByRole("button", { name: "Create department" }).click();
  await page.getByRole("row").filter({ hasText: "sales" }).getByRole("button", { name: "Members" }).click();
  await page.getByLabel("Members of sales").fill("domain:sales.example.com\nemail:ann@example.com");
  await page.getByRole("button", { name: "Save members" }).click();
  await page.getByText("Members of sales saved.").waitFor();
  await accessible(page, "departments");
  await shoot(page, "departments");
  await s.capture();

  // Usage before and after a call made through the official OpenAI SDK.
  await open(page, "Usage");
  await page.getByText("No calls match.").waitFor();
  const client = new OpenAI({ apiKey: issued, baseURL: `${keyward}/v1` });
  const completion = await client.chat.completions.create({
    model: "chat",
    messages: [{ role: "user", content: `Say hello. ${CANARY}` }],
  });
  assert.ok(completion.choices[0].message.content.length > 0);
  await page.getByRole("button", { name: "Show" }).click();
  const row = page.getByRole("row").filter({ hasText: "gpt-4o-mini" }).first();
  await row.waitFor();
  const bars = await page.locator("svg[aria-label='Spend per day'] rect").count();
  assert.ok(bars >= 1, "the chart has today's bar");
  const tokens = await page.locator("svg[aria-label='Tokens per day'] rect title").first().textContent();
  assert.doesNotMatch(tokens, /: 0$/, "the chart counts the call's tokens");
  await row.click();
  await page.getByText("Served by credential team-openai (openai) — this tenant's own key").waitFor();
  await accessible(page, "usage");
  await shoot(page, "usage");
  await s.capture();

  // A knowledge base: upload with progress, ingestion on the tenant's key, a search that names
  // documents and never shows their text.
  await operator("POST", `/admin/v1/tenants/${tenant}/departments`, { name: "hr" });
  await operator("POST", `/admin/v1/tenants/${tenant}/knowledge-bases`, {
    name: "handbook", department: "hr", embedding: { credential: "team-openai", model: "text-embedding-3-small" } });
  await open(page, "Knowledge bases");
  await page.getByRole("row").filter({ hasText: "handbook" }).getByRole("button", { name: "Documents" }).click();
  await page.getByLabel("Document (text or markdown)").setInputFiles({
    name: "leave-policy.md", mimeType: "text/markdown",
    buffer: Buffer.from(`# Leave policy\n\nEmployees get 30 days of paid leave. ${DOCUMENT_CANARY}\n`) });
  await page.getByRole("button", { name: "Upload" }).click();
  await page.getByText("Uploaded leave-policy.md").waitFor();
  await page.getByRole("row").filter({ hasText: "leave-policy.md" }).getByText("ready").waitFor();
  await page.getByLabel(/^Search/).fill("How many days of paid leave?");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("cell", { name: "leave-policy.md" }).nth(1).waitFor();
  const oversized = await page.evaluate(async (url) => {
    const form = new FormData();
    form.append("file", new Blob(["x".repeat(11 * 1024 * 1024)], { type: "text/plain" }), "huge.txt");
    const { csrf_token: csrf } = await (await fetch("/console/api/session")).json();
    const response = await fetch(url, { method: "POST", body: form, headers: { "x-keyward-csrf": csrf } });
    return { status: response.status, body: await response.text() };
  }, `/v1/knowledge-bases/handbook/documents`);
  assert.ok([400, 413].includes(oversized.status), `an oversized upload is refused: ${JSON.stringify(oversized)}`);
  assert.match(oversized.body, /max_body_bytes|too large|larger/, oversized.body);
  await accessible(page, "knowledge");
  await shoot(page, "knowledge-documents");
  await s.capture();

  // A provider rejection shows on the credentials page within a second (it polls twice a second).
  await open(page, "Credentials");
  await fetch(`${mock}/_mock/revoke`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: SECRET }) });
  await assert.rejects(client.chat.completions.create({ model: "team-openai/gpt-4o-mini", messages: [{ role: "user", content: CANARY }] }));
  const rejectedAt = Date.now();
  await page.locator("tr[data-credential='team-openai']").getByText("Rejected by provider").waitFor({ timeout: 5000 });
  const shownAfter = Date.now() - rejectedAt;
  assert.ok(shownAfter <= 1000, `the rejection showed after ${shownAfter} ms`);
  const lastUsed = page.locator("tr[data-credential='team-openai']").getByRole("cell").nth(5);
  assert.match(await lastUsed.textContent(), /UTC/, "the credential's last use is shown");
  await shoot(page, "credentials-rejected");
  await s.capture();

  // Budgets, reconciliation, knowledge, connectors, audit: every page renders and is accessible.
  await open(page, "Budgets");
  await page.getByLabel("Hard cap (USD)").fill("25.00");
  await page.getByLabel("Soft limit (USD)").fill("20.00");
  await page.getByRole("button", { name: "Save budget" }).click();
  await page.getByText("Budget saved.").waitFor();
  await page.getByRole("cell", { name: "$25.00", exact: true }).waitFor();
  await accessible(page, "budgets");
  await shoot(page, "budgets");
  await s.capture();
  await open(page, "Reconciliation");
  await page.getByLabel("Provider").selectOption("openai");
  await page.getByLabel("Export file(s)").setInputFiles(path.join(root, "fixtures/provider-exports/openai-usage-completions.json"));
  await page.getByRole("button", { name: "Reconcile" }).click();
  await page.getByText(/day-model lines from/).waitFor();
  await page.getByText("only_in_provider").first().waitFor();
  await accessible(page, "reconciliation");
  await shoot(page, "reconciliation");
  await s.capture();
  await visit(s, "Connectors", "connectors");
  await visit(s, "Audit log", "audit");
  await page.getByRole("cell", { name: "credential.add" }).first().waitFor();

  // Revoke the key in the console: the SDK is refused from then on.
  await open(page, "Platform keys");
  const keyRow = page.getByRole("row").filter({ hasText: "sdk" });
  await keyRow.getByRole("button", { name: "Revoke" }).click();
  await page.getByText("Revoked sdk.").waitFor();
  await assert.rejects(client.models.list(), (error) => error.status === 401);

  // Refusals: CSRF, another origin's page, another tenant's id.
  const forged = await page.evaluate(async (url) => {
    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ provider: "openai", label: "forged", secret: "sk-proj-forged-0000000000000000" }) });
    return { status: response.status, body: await response.text() };
  }, `/admin/v1/tenants/${tenant}/credentials`);
  assert.equal(forged.status, 403);
  assert.match(forged.body, /CSRF/);
  await page.goto(`${keyward}/console/credentials?tenant=${other}`);
  await page.getByText("tenant not found").waitFor();

  // An action after the session is gone: back to sign-in, nothing done.
  await page.goto(`${keyward}/console/budgets`);
  await page.getByRole("heading", { level: 1, name: "Budgets" }).waitFor();
  await s.context.clearCookies();
  await page.getByLabel("Hard cap (USD)").fill("1.00");
  await page.getByRole("button", { name: "Save budget" }).click();
  await page.getByText("Your session has ended").waitFor();
  const budgetsNow = await operator("GET", `/admin/v1/tenants/${tenant}/budgets`);
  assert.equal(Number(budgetsNow.data[0].hard_limit_usd), 25, "the half-done action changed nothing");

  // Sign in again and sign out: the session is over.
  await signIn(page, admin);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to the Keyward console" }).waitFor();
  await page.goto(`${keyward}/console/usage`);
  await page.getByRole("heading", { name: "Sign in to the Keyward console" }).waitFor();

  for (const text of s.html) {
    for (const secret of [SECRET, CANARY, DOCUMENT_CANARY, admin, issued]) {
      assert.ok(!text.includes(secret), "no secret, prompt or key in any page");
    }
  }
  const foreign = s.requests.filter((url) => !url.startsWith(keyward) && !url.startsWith("data:") && !url.startsWith("blob:"));
  assert.deepEqual(foreign, [], "no request leaves the origin");
  await s.context.close();
});

test("the operator sees tenants, the master key and verifies the audit chain", async () => {
  const s = await session();
  const { page } = s;
  await signIn(page, OPERATOR);
  await visit(s, "Tenants", "tenants");
  await page.getByRole("cell", { name: "acme" }).waitFor();
  await page.getByLabel("New tenant name").fill("initech");
  await page.getByRole("button", { name: "Create tenant" }).click();
  await page.getByText(/Created tenant initech/).waitFor();
  await page.getByRole("row").filter({ hasText: "initech" }).getByRole("link", { name: "Open" }).click();
  await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
  await page.getByLabel("Tenant").getByRole("option", { name: /initech/, selected: true }).waitFor({ state: "attached" });
  await visit(s, "Master key", "master-key");
  await page.getByText("Primary version 1").waitFor();
  await open(page, "Audit log");
  await page.getByRole("button", { name: "Verify the chain" }).click();
  await page.getByText("Chain intact").waitFor();
  await shoot(page, "audit-verified");
  await s.capture();
  for (const text of s.html) assert.ok(!text.includes(OPERATOR), "the operator token is not in any page");
  const foreign = s.requests.filter((url) => !url.startsWith(keyward) && !url.startsWith("data:") && !url.startsWith("blob:"));
  assert.deepEqual(foreign, [], "no request leaves the origin");
  await s.context.close();
});
