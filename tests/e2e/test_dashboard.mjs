// Drives the dashboard in Debian's Chromium through playwright-core (installed in web/ by the
// build's npm ci), for tests/e2e/test_dashboard.py, which starts `mare run` and the simulator
// and checks what this script saw. Usage: node test_dashboard.mjs CONFIG.json
// It prints one JSON object: what each view showed, the browser's console errors, and the
// screenshots it saved. It exits non-zero only when it could not drive the browser at all.
import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(new URL('../../web/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const out = { errors: [], screenshots: [], steps: [] };
const profile = mkdtempSync(join(tmpdir(), 'mare-chromium-'));
mkdirSync(cfg.artifacts, { recursive: true });

// Exactly these flags (headless, as root in a sandbox, no network of its own), a fresh profile,
// and the pipe Playwright talks over.
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  ignoreDefaultArgs: true,
  args: [...FLAGS, `--user-data-dir=${profile}`, '--remote-debugging-pipe', 'about:blank'],
  timeout: 60000,
});

// What the overview's map shows, read from the canvas Leaflet drew the basemap on: the share of
// the map that is land (its fill colour) and water (nothing drawn: the sea is the background),
// and what is drawn at the given places ([name, lat, lon]), placed with the map's view
// (Web Mercator between its south, west, north and east edges).
async function mapShows(page, places) {
  return page.evaluate((places) => {
    const map = document.querySelector('#map');
    const canvas = map.querySelector('.leaflet-overlay-pane canvas');
    const mr = map.getBoundingClientRect();
    const cr = canvas.getBoundingClientRect();
    const ctx = canvas.getContext('2d');
    const LAND = [238, 238, 228]; // the land's fill, #eeeee4
    const at = (x, y) => {
      const px = ctx.getImageData(Math.floor((x - cr.left) * canvas.width / cr.width), Math.floor((y - cr.top) * canvas.height / cr.height), 1, 1).data;
      if (px[3] === 0) return 'water';
      return px.slice(0, 3).every((v, i) => Math.abs(v - LAND[i]) <= 3) ? 'land' : 'line';
    };
    const counts = { land: 0, water: 0, line: 0 };
    const COLS = 48;
    const ROWS = 16;
    for (let i = 0; i < COLS; i++) {
      for (let j = 0; j < ROWS; j++) counts[at(mr.left + (i + 0.5) * mr.width / COLS, mr.top + (j + 0.5) * mr.height / ROWS)]++;
    }
    const [south, west, north, east] = map.dataset.view.split(',').map(Number);
    const merc = (lat) => Math.log(Math.tan(Math.PI / 4 + lat * Math.PI / 360));
    const shown = {};
    for (const [name, lat, lon] of places) {
      const x = mr.left + (lon - west) / (east - west) * mr.width;
      const y = mr.top + (merc(north) - merc(lat)) / (merc(north) - merc(south)) * mr.height;
      shown[name] = x > mr.left && x < mr.right && y > mr.top && y < mr.bottom ? at(x, y) : 'outside';
    }
    return {
      zoom: Number(map.dataset.zoom),
      view: map.dataset.view,
      land: counts.land / (COLS * ROWS),
      water: counts.water / (COLS * ROWS),
      places: shown,
    };
  }, places);
}

async function shot(page, name) {
  const path = join(cfg.artifacts, `${name}.png`);
  await page.mouse.move(1439, 899); // no hover highlight in the picture
  await page.screenshot({ path, fullPage: false });
  out.screenshots.push(path);
}

// Thrown to end the run after the overview's map, when the config asks only for it.
const MAP_ONLY = Symbol('one view only'); // the end of a run that checks one view

function step(name) {
  out.steps.push(name);
}

// Where the leftmost ink of each chart's y-axis labels is, in CSS pixels from the chart's left
// edge, read from the canvas uPlot drew: 0 means a label runs off the edge (a pressure of
// 1,006.95 shown as ",006.95"); null means the axis has no label at all.
async function axisInk(page) {
  return page.$$eval('.chart[data-field]', (boxes) => boxes.map((box) => {
    const canvas = box.querySelector('canvas');
    const over = box.querySelector('.u-over');
    const cr = canvas.getBoundingClientRect();
    const or = over.getBoundingClientRect();
    const sx = canvas.width / cr.width;
    const sy = canvas.height / cr.height;
    const w = Math.floor((or.left - cr.left) * sx); // the axis: the canvas left of the plot
    // A label is centred on its tick: the top and bottom ones reach past the plot.
    const y0 = Math.max(0, Math.floor((or.top - cr.top - 10) * sy));
    const y1 = Math.min(canvas.height, Math.ceil((or.bottom - cr.top + 10) * sy));
    const px = canvas.getContext('2d').getImageData(0, y0, w, y1 - y0).data;
    let left = null;
    for (let x = 0; x < w && left === null; x++) {
      for (let y = 0; y < y1 - y0; y++) {
        if (px[(y * w + x) * 4 + 3] > 0) {
          left = x;
          break;
        }
      }
    }
    return { field: box.dataset.field, axis: w / sx, leftInk: left === null ? null : left / sx };
  }));
}

try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  page.on('console', (m) => {
    if (m.type() === 'error') out.errors.push(`console: ${m.text()} (${m.location().url ?? ''})`);
  });
  page.on('pageerror', (e) => out.errors.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    // A live stream cut when the page navigates away is not an error.
    if (!r.url().includes('/api/v1/live')) out.errors.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`);
  });

  // Only the token prompt: with [[http.tokens]], a sensor's view asks for a token, says when one
  // is refused, then draws its charts and opens the live stream with the right one.
  if (cfg.tokenOnly) {
    step('token prompt');
    await page.goto(`${cfg.url}/#/sensor/${cfg.sensor}?range=1h`);
    await page.waitForSelector('#token-prompt #token-input');
    const chart = '.chart[data-field="temperature"]';
    out.token = { pointsBefore: await page.$$eval(chart, (els) => els.map((e) => Number(e.dataset.points ?? 0))) };
    await shot(page, 'token-prompt');
    step('a wrong token');
    await page.fill('#token-input', cfg.wrongToken);
    await page.click('#token-prompt button[type="submit"]');
    await page.waitForFunction(() => /refused/.test(document.querySelector('#token-prompt .token-refused')?.textContent ?? ''));
    out.token.refusedShown = true;
    step('the right token');
    await page.fill('#token-input', cfg.token);
    await page.click('#token-prompt button[type="submit"]');
    await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.points ?? 0) > 0, chart);
    out.token.points = await page.$eval(chart, (e) => Number(e.dataset.points));
    await page.waitForFunction(() => document.querySelector('#live-status')?.dataset.state === 'live');
    out.token.live = await page.getAttribute('#live-status', 'data-state');
    out.token.promptGone = (await page.$('#token-prompt')) === null;
    out.token.stored = await page.evaluate(() => sessionStorage.getItem('mare.token'));
    await shot(page, cfg.tokenOnly);
    throw MAP_ONLY;
  }

  // Only a sensor's day with its forecast (a month of history: the forecast has its interval).
  if (cfg.forecastOnly) {
    step('forecast');
    await page.goto(`${cfg.url}/#/sensor/${cfg.sensor}?range=24h`);
    const sel = '.chart[data-field="temperature"]';
    await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.forecastHours ?? 0) > 0, sel);
    await page.locator(sel).scrollIntoViewIfNeeded();
    out.forecast = await page.$eval(sel, (e) => ({
      hours: Number(e.dataset.forecastHours),
      issued: e.dataset.forecastIssued,
      values: JSON.parse(e.dataset.forecastValues),
      intervalHours: Number(e.dataset.forecastIntervalHours),
      xMax: Number(e.dataset.xMax),
    }));
    // The interval is drawn: the chart's pixels right of now hold the band's fill colour.
    out.forecast.bandPixels = await page.$eval(`${sel} canvas`, (c) => {
      const ctx = c.getContext('2d');
      const { data } = ctx.getImageData(Math.floor(c.width * 0.55), 0, Math.floor(c.width * 0.4), c.height);
      let n = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i] > data[i + 2] + 20 && data[i + 3] > 0) n++; // orange over white
      return n;
    });
    await shot(page, cfg.forecastOnly);
    // The Stats view's forecast models: each one's recent MAE and skill, and the one in use.
    step('forecast skill');
    await page.goto(`${cfg.url}/#/stats?sensor=${cfg.sensor}&res=1h`);
    await page.waitForSelector('#forecast-skill[data-state="ready"]');
    out.skill = await page.$$eval('#forecast-skill tbody tr', (trs) => trs.map((tr) => ({
      model: tr.dataset.model,
      inUse: tr.dataset.inUse === 'true',
      cells: [...tr.querySelectorAll('td')].map((td) => td.textContent),
    })));
    out.skillInfo = await page.textContent('#forecast-skill-info');
    await page.locator('#forecast-skill').scrollIntoViewIfNeeded();
    await shot(page, 'stats-forecast-skill');
    throw MAP_ONLY;
  }

  // Overview: one marker per buoy on the offline basemap, one row per sensor.
  step('overview');
  await page.goto(`${cfg.url}/#/`);
  await page.waitForFunction((n) => document.querySelectorAll('.buoy-marker').length >= n, cfg.sensors);
  await page.waitForSelector('#map[data-basemap="ready"]');
  await page.waitForFunction((n) => document.querySelectorAll('#sensor-table tbody tr').length >= n, cfg.rows);
  await page.waitForTimeout(1500); // a couple of live snapshots: tracks and values settle
  out.overview = {
    markers: await page.$$eval('.buoy-marker', (els) => els.map((e) => Number(e.dataset.sensor)).sort((a, b) => a - b)),
    rows: await page.$$eval('#sensor-table tbody tr', (els) => els.map((e) => Number(e.dataset.sensor))),
    health: await page.$$eval('#sensor-table tbody tr td:nth-child(2)', (els) => els.map((e) => e.textContent)),
    summary: await page.textContent('#overview-summary'),
    live: await page.getAttribute('#live-status', 'data-state'),
  };
  await page.waitForSelector('#map[data-fitted="true"]');
  out.map = await mapShows(page, cfg.mapPlaces);
  if (cfg.mapOnly) {
    await shot(page, cfg.mapOnly);
    throw MAP_ONLY;
  }
  await shot(page, 'overview');

  // Clicking a buoy opens it.
  step('open a buoy');
  await page.click(`.buoy-marker[data-sensor="${cfg.sensor}"]`);
  await page.waitForFunction((id) => location.hash.startsWith(`#/sensor/${id}`), cfg.sensor);
  out.opened = await page.evaluate(() => location.hash);

  // Sensor view: points, and more of them as time passes.
  step('sensor chart');
  const chart = '.chart[data-field="temperature"]';
  await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.points ?? 0) > 0, chart);
  const before = await page.$eval(chart, (e) => ({ points: Number(e.dataset.points), last: e.dataset.lastTs, gaps: Number(e.dataset.gaps) }));
  await page.waitForTimeout(cfg.advanceWaitMs);
  const after = await page.$eval(chart, (e) => ({ points: Number(e.dataset.points), last: e.dataset.lastTs, gaps: Number(e.dataset.gaps) }));
  out.sensor = {
    before,
    after,
    charts: await page.$$eval('.chart', (els) => els.map((e) => e.dataset.field)),
    canvases: await page.$$eval('.chart canvas', (els) => els.length),
  };
  out.axisInk = { hour: await axisInk(page) };
  await shot(page, 'sensor-1h');
  // Zoom with the wheel over one chart: every chart of the sensor follows; a double-click
  // goes back to the whole range.
  const span = async (sel) => page.$eval(sel, (e) => Number(e.dataset.xMax) - Number(e.dataset.xMin));
  const fullSpan = await span(chart);
  await page.locator(chart).scrollIntoViewIfNeeded();
  const box = await page.locator(`${chart} .u-over`).boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.wheel(0, -400);
  await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.zoomed === 'true', chart);
  out.zoom = { full: fullSpan, zoomed: await span(chart), other: await span('.chart[data-field="pressure"]') };
  out.axisInk.zoomed = await axisInk(page); // a narrower range of values: labels with more digits
  await page.mouse.dblclick(box.x + box.width / 2, box.y + box.height / 2);
  await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.zoomed === 'false', chart);
  out.zoom.reset = await span(chart);
  // The last 24 hours: the hourly band over the simulated history.
  await page.click('#range-picker button[data-range="24h"]');
  await page.waitForFunction((sel) => /Mean per/.test(document.querySelector('#chart-info')?.textContent ?? '') &&
    Number(document.querySelector(sel)?.dataset.points ?? 0) > 0, chart);
  out.sensor.day = await page.$eval(chart, (e) => ({ points: Number(e.dataset.points), bandHours: Number(e.dataset.bandHours) }));
  // The temperature chart continues past now with the latest forecast and its interval.
  await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.forecastHours ?? 0) > 0, chart);
  out.forecast = await page.$eval(chart, (e) => ({
    hours: Number(e.dataset.forecastHours),
    issued: e.dataset.forecastIssued,
    values: JSON.parse(e.dataset.forecastValues),
    intervalHours: Number(e.dataset.forecastIntervalHours),
    xMax: Number(e.dataset.xMax),
    legend: [...e.querySelectorAll('.u-legend .u-label')].map((l) => l.textContent),
    info: document.querySelector('#chart-info')?.textContent ?? '',
  }));
  out.forecast.otherCharts = await page.$$eval('.chart', (els) => els.filter((e) => Number(e.dataset.forecastHours) > 0).map((e) => e.dataset.field));
  out.forecast.now = Date.now() / 1000;
  out.axisInk.day = await axisInk(page);
  await shot(page, 'sensor-24h');

  // SQL console: the rows of a known statement.
  step('sql');
  await page.goto(`${cfg.url}/#/sql`);
  await page.fill('#sql-editor', cfg.sql.known);
  await page.click('#sql-run');
  await page.waitForSelector('#sql-table');
  out.sql = {
    columns: await page.$$eval('#sql-table thead th', (els) => els.map((e) => e.textContent)),
    rows: await page.$$eval('#sql-table tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent))),
  };
  const [sqlCsv] = await Promise.all([page.waitForEvent('download'), page.click('#sql-csv')]);
  out.sqlCsv = readFileSync(await sqlCsv.path(), 'utf8');
  // The same statement as a chart.
  await page.fill('#sql-editor', cfg.sql.chart);
  await page.click('#sql-run');
  await page.waitForFunction(() => document.querySelector('#sql-status')?.dataset.state === 'done');
  await page.click('.tabs button[data-tab="chart"]');
  await page.waitForSelector('#sql-chart canvas');
  out.sql.chartSeries = Number(await page.getAttribute('#sql-chart', 'data-series'));
  await shot(page, 'sql');
  // A bad statement: the error, marked at its position.
  await page.click('.tabs button[data-tab="table"]');
  await page.fill('#sql-editor', cfg.sql.invalid);
  await page.click('#sql-run');
  await page.waitForSelector('#sql-error-mark');
  out.sqlError = {
    message: await page.textContent('#sql-error-message'),
    markLine: Number(await page.getAttribute('#sql-error-mark', 'data-line')),
    markColumn: Number(await page.getAttribute('#sql-error-mark', 'data-column')),
    markText: await page.textContent('#sql-error-mark'),
    caret: await page.textContent('#sql-error-caret'),
    selection: await page.$eval('#sql-editor', (e) => e.selectionStart),
  };
  await shot(page, 'sql-error');

  // Stats: the hourly rollup table of one sensor.
  step('stats');
  await page.goto(`${cfg.url}/#/stats?sensor=${cfg.sensor}&res=1h&from=${cfg.stats.from}&to=${cfg.stats.to}`);
  await page.waitForSelector('#stats-table[data-state="ready"]');
  out.stats = await page.$$eval('#stats-table tbody tr', (trs) =>
    trs.map((tr) => {
      const row = { open: tr.dataset.open === 'true' };
      for (const td of tr.cells) row[td.dataset.col] = td.dataset.value;
      return row;
    }),
  );
  // Sorting by a column reorders the rows.
  await page.click('#stats-table th[data-col="max"]');
  out.statsSortedMax = await page.$$eval('#stats-table tbody td[data-col="max"]', (tds) => tds.map((td) => Number(td.dataset.value)));
  await page.click('#stats-table th[data-col="window_start"]');
  await shot(page, 'stats');
  // The CSV download: a header and the table's rows.
  const [statsCsv] = await Promise.all([page.waitForEvent('download'), page.click('#stats-csv')]);
  out.statsCsv = { name: statsCsv.suggestedFilename(), text: readFileSync(await statsCsv.path(), 'utf8') };

  // Pipeline health.
  step('pipeline');
  await page.goto(`${cfg.url}/#/pipeline`);
  await page.waitForSelector('#lags-table');
  await page.waitForFunction(() => /readings\/s/.test(document.querySelector('#ingest-rate')?.textContent ?? ''));
  await page.waitForTimeout(1500);
  out.pipeline = {
    rate: await page.textContent('#ingest-rate'),
    sources: await page.$$eval('#sources-table tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent))),
    sourceHeaders: await page.$$eval('#sources-table thead th', (ths) => ths.map((th) => th.textContent)),
    lags: await page.$$eval('#lags-table tbody tr', (trs) => trs.map((tr) => tr.cells[0].textContent)),
    topics: await page.$$eval('#log-table tbody tr', (trs) => trs.map((tr) => tr.cells[0].textContent)),
    sinks: await page.$$eval('#sinks-table tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent))),
  };
  await shot(page, 'pipeline');
  await context.close();
} catch (e) {
  if (e !== MAP_ONLY) out.failure = `${out.steps[out.steps.length - 1] ?? 'start'}: ${e.stack ?? e}`;
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out) + '\n');
