// Drives the pipeline view of a split pipeline (`mare ingest`, `mare stream`, `mare store` on
// Kafka, the dashboard served by `mare store`) in Debian's Chromium through playwright-core, for
// tests/e2e/test_dashboard_split.py. Usage: node test_dashboard_split.mjs CONFIG.json
// CONFIG: {url, chromium, artifacts, shot, waitFor}: waitFor is "stages" (every role up, the
// stages filled) or "stale" (a role said silent). Prints one JSON object: what the view showed,
// the browser's console errors, and a failure if it could not get there.
import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(new URL('../../web/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const out = { errors: [] };
const profile = mkdtempSync(join(tmpdir(), 'mare-chromium-'));
mkdirSync(cfg.artifacts, { recursive: true });
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
const browser = await chromium.launch({
  executablePath: cfg.chromium,
  ignoreDefaultArgs: true,
  args: [...FLAGS, `--user-data-dir=${profile}`, '--remote-debugging-pipe', 'about:blank'],
  timeout: 60000,
});

const rows = (page, id) => page.$$eval(`#${id} tbody tr`, (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
// A card's key-value list, by its title.
const card = (page, title) => page.$$eval('.card', (cards, title) => {
  const c = cards.find((x) => x.querySelector('h2')?.textContent === title);
  if (!c) return null;
  const kv = {};
  const dts = [...c.querySelectorAll('dt')];
  for (const dt of dts) kv[dt.textContent] = dt.nextElementSibling?.textContent;
  return { kv, notes: [...c.querySelectorAll('.stale-note')].map((n) => n.textContent) };
}, title);

try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1400 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(60000);
  page.on('console', (m) => {
    if (m.type() === 'error') out.errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => out.errors.push(`page error: ${e.message}`));
  await page.goto(`${cfg.url}/#/pipeline`);
  await page.waitForSelector('#roles-table');
  if (cfg.waitFor === 'stale') {
    await page.waitForFunction(() => /no status for/.test(document.querySelector('#stale-roles')?.textContent ?? ''));
  } else {
    // Every role listed and up, and the store's readings shown.
    await page.waitForFunction((n) => document.querySelectorAll('#roles-table tbody tr').length >= n &&
      ![...document.querySelectorAll('#roles-table tbody tr')].some((tr) => /no status/.test(tr.textContent)), cfg.roles);
  }
  await page.waitForTimeout(1500);  // a couple more snapshots: the figures as they settle
  out.roles = await rows(page, 'roles-table');
  out.sources = await rows(page, 'sources-table');
  out.lags = await rows(page, 'lags-table');
  out.rollups = await card(page, 'Rollups');
  out.store = await card(page, 'Store');
  out.staleRoles = await page.$$eval('#stale-roles .stale-role', (els) => els.map((e) => e.textContent));
  const path = join(cfg.artifacts, `${cfg.shot}.png`);
  await page.screenshot({ path, fullPage: true });
  out.screenshot = path;
  await context.close();
} catch (e) {
  out.failure = String(e.stack ?? e);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out) + '\n');
