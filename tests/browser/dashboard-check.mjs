#!/usr/bin/env node
// Opens a meshgate dashboard in headless Chromium (Debian's `chromium`,
// driven by playwright-core from tests/interop/node_modules), waits for live
// data, checks that given texts appear, and saves a screenshot.
//
//   node tests/browser/dashboard-check.mjs --url http://127.0.0.1:PORT/dashboard \
//     [--expect TEXT]... [--expect-in 'CSS-SELECTOR=TEXT']... \
//     [--min-polls N] [--screenshot PATH] [--timeout-ms N] [--chromium PATH]
//
// --url         the dashboard page (required)
// --expect      text the page's visible text must contain (repeatable)
// --expect-in   text the first element matching the selector must contain,
//               e.g. '#clusters-table=1234' or '[data-host="127.0.0.1:12201"]=unhealthy'
// --min-polls   wait until the page has applied N snapshots (default 2: the
//               second poll is the first with rates)
// --screenshot  where to save a full-page PNG (default
//               target/test-artifacts/dashboard.png); saved on failure too
// --timeout-ms  how long to wait for the polls and the texts (default 20000)
// --chromium    the browser binary (default $CHROMIUM, else /usr/bin/chromium)
//
// Prints one JSON line: {"ok", "polls", "missing": [...], "console_errors":
// [...], "screenshot", "elapsed_ms"}. Exit status 0 when every text was
// found, 1 when some were not (or the page never went live), 2 on bad
// arguments or when the browser cannot start.
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");

function usage(message) {
  console.log(JSON.stringify({ ok: false, error: message }));
  process.exit(2);
}

// The `=` between selector and text: the first one outside `[...]`, so
// attribute selectors such as [data-host="h"] keep theirs.
function separator(value) {
  let depth = 0;
  for (let i = 0; i < value.length; i++) {
    if (value[i] === "[") depth++;
    else if (value[i] === "]") depth--;
    else if (value[i] === "=" && depth === 0) return i;
  }
  return -1;
}

function parseArgs(argv) {
  const args = { expect: [], expectIn: [], minPolls: 2, timeoutMs: 20000,
    screenshot: resolve(repo, "target", "test-artifacts", "dashboard.png"),
    chromium: process.env.CHROMIUM || "/usr/bin/chromium" };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) usage(`${flag} needs a value`);
    i++;
    switch (flag) {
      case "--url": args.url = value; break;
      case "--expect": args.expect.push(value); break;
      case "--expect-in": {
        const at = separator(value);
        if (at <= 0) usage(`--expect-in wants SELECTOR=TEXT, got ${value}`);
        args.expectIn.push({ selector: value.slice(0, at), text: value.slice(at + 1) });
        break;
      }
      case "--min-polls": args.minPolls = Number(value); break;
      case "--screenshot": args.screenshot = resolve(value); break;
      case "--timeout-ms": args.timeoutMs = Number(value); break;
      case "--chromium": args.chromium = value; break;
      default: usage(`unknown argument ${flag}`);
    }
  }
  if (!args.url) usage("--url is required");
  if (!Number.isFinite(args.minPolls) || !Number.isFinite(args.timeoutMs)) usage("--min-polls and --timeout-ms take numbers");
  return args;
}

const args = parseArgs(process.argv.slice(2));
const require = createRequire(resolve(repo, "tests", "interop", "package.json"));
let chromium;
try {
  ({ chromium } = require("playwright-core"));
} catch (e) {
  usage(`playwright-core is not installed (run scripts/install-test-deps): ${e.message}`);
}

const started = Date.now();
let browser;
try {
  browser = await chromium.launch({ executablePath: args.chromium, headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
} catch (e) {
  usage(`cannot start ${args.chromium} (Debian: apt-get install chromium): ${e.message.split("\n")[0]}`);
}

const result = { ok: false, polls: 0, missing: [], console_errors: [], screenshot: args.screenshot };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("console", m => { if (m.type() === "error") result.console_errors.push(m.text()); });
  page.on("pageerror", e => result.console_errors.push(String(e)));
  await page.goto(args.url, { timeout: args.timeoutMs, waitUntil: "load" });
  const deadline = started + args.timeoutMs;
  const remaining = () => Math.max(1, deadline - Date.now());
  try {
    await page.waitForFunction(n => Number(document.body.dataset.polls || 0) >= n, args.minPolls, { timeout: remaining() });
  } catch {
    result.missing.push(`live data: fewer than ${args.minPolls} polls applied`);
  }
  // Texts may need one more poll to settle (rates): re-check until the deadline.
  const check = async () => {
    const missing = [];
    const text = await page.evaluate(() => document.body.innerText);
    for (const t of args.expect) if (!text.includes(t)) missing.push(t);
    for (const { selector, text: t } of args.expectIn) {
      const inner = await page.evaluate(s => { const n = document.querySelector(s); return n ? n.innerText : null; }, selector);
      if (inner === null) missing.push(`${selector}: no such element`);
      else if (!inner.includes(t)) missing.push(`${selector}: ${JSON.stringify(t)} not in ${JSON.stringify(inner.slice(0, 300))}`);
    }
    return missing;
  };
  let missing = await check();
  while (missing.length && Date.now() < deadline) {
    await page.waitForTimeout(250);
    missing = await check();
  }
  result.missing.push(...missing);
  result.polls = await page.evaluate(() => Number(document.body.dataset.polls || 0));
  mkdirSync(dirname(args.screenshot), { recursive: true });
  await page.screenshot({ path: args.screenshot, fullPage: true });
  result.ok = result.missing.length === 0;
} catch (e) {
  result.missing.push(`browser error: ${e.message.split("\n")[0]}`);
} finally {
  await browser.close();
}
result.elapsed_ms = Date.now() - started;
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
