// Sensor view: one chart per numeric field over a chosen range (last 15 min, 1 h, 24 h, 7 d, or
// custom), with the hourly min–max band and mean line, gaps drawn as gaps, zoom and pan. New
// readings arrive on the live stream and the window slides. On the 24 h and 7 d ranges the
// forecast field's chart continues past now with the latest forecast and its 80 % interval.
import { forecast, numericColumns, query, sensors, sqlName, sqlTime, type Cell, type Forecast, type ForecastHour, type LiveSensor } from '../api';
import { live, type LiveReadings } from '../live';
import { ago, el, num, routeParams, setRouteParams, utc } from '../format';
import { AxisGroup, PALETTE, TIME_VALUES, autoWidth, medianStep, uPlot, utcDate, valueAxis, zoomPanPlugin } from '../chart';

const RANGES: Record<string, number> = { '15m': 900, '1h': 3600, '24h': 86400, '7d': 7 * 86400 };
const NICE_WIDTHS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
const MAX_RAW_POINTS = 5000;
const TARGET_POINTS = 1500;
const HOUR = 3600;
const CHART_HEIGHT = 220;
// The ranges long enough for a day ahead to read beside them; how often a shown forecast is
// asked again (a new one comes each hour).
const FORECAST_RANGES = new Set(['24h', '7d']);
const FORECAST_REFRESH_MS = 5 * 60 * 1000;

interface Band {
  x: number[]; // hour starts
  min: number[];
  max: number[];
  mean: number[];
  n: number[];
}

interface FieldChart {
  field: string;
  box: HTMLElement;
  plot: uPlot;
  xs: number[];
  ys: (number | null)[];
  ns: number[]; // readings per point (1 for raw readings)
  band: Band;
  forecast: ForecastHour[]; // empty on the charts of other fields
  stopResize: () => void;
}

function widthLabel(w: number): string {
  if (w % 86400 === 0) return `${w / 86400}d`;
  if (w % 3600 === 0) return `${w / 3600}h`;
  if (w % 60 === 0) return `${w / 60}m`;
  return `${w}s`;
}

export function mount(root: HTMLElement, args: string[]): () => void {
  const id = Number(args[0]);
  if (!Number.isInteger(id) || id < 0) {
    root.append(el('p', { class: 'error' }, `No such sensor: ${args[0] ?? ''}`));
    return () => {};
  }
  const params = routeParams();
  let range = params.get('range') ?? '1h';
  if (range !== 'custom' && !(range in RANGES)) range = '1h';

  const title = el('h1', {}, `Sensor ${id}`);
  const healthEl = el('span', { class: 'health', id: 'sensor-health' });
  const latestEl = el('div', { class: 'latest', id: 'sensor-latest' });
  const picker = el('div', { class: 'range-picker', id: 'range-picker' });
  const fromIn = el('input', { type: 'datetime-local', step: '1', id: 'range-from' }) as HTMLInputElement;
  const toIn = el('input', { type: 'datetime-local', step: '1', id: 'range-to' }) as HTMLInputElement;
  const apply = el('button', { type: 'button', id: 'range-apply' }, 'Apply');
  const custom = el('span', { class: 'custom-range' }, 'from ', fromIn, ' to ', toIn, ' UTC ', apply);
  const info = el('div', { class: 'muted chart-info', id: 'chart-info' });
  const chartsEl = el('div', { class: 'charts', id: 'charts' });
  root.append(
    el('section', { class: 'sensor-view' },
      el('div', { class: 'sensor-head' }, title, healthEl, el('a', { href: `#/stats?sensor=${id}`, class: 'side-link' }, 'hourly stats →')),
      latestEl,
      el('div', { class: 'panel' },
        el('div', { class: 'toolbar' }, picker, custom),
        info,
        el('div', { class: 'muted hint' }, 'Drag across a chart or turn the wheel to zoom, Shift+drag to pan, double-click to show the whole range.'),
        chartsEl),
    ),
  );

  for (const r of [...Object.keys(RANGES), 'custom']) {
    const b = el('button', { type: 'button', 'data-range': r }, r === 'custom' ? 'custom' : `last ${r}`);
    b.addEventListener('click', () => {
      if (r === 'custom') {
        const [a, z] = view();
        fromIn.value = toLocalInput(a);
        toIn.value = toLocalInput(z);
      }
      range = r;
      saveParams();
      load();
    });
    picker.append(b);
  }
  apply.addEventListener('click', () => {
    range = 'custom';
    saveParams();
    load();
  });
  if (params.get('from')) fromIn.value = toLocalInput(Date.parse(params.get('from')!) / 1000);
  if (params.get('to')) toIn.value = toLocalInput(Date.parse(params.get('to')!) / 1000);

  let charts: FieldChart[] = [];
  const axisGroup = new AxisGroup();
  let userZoom: [number, number] | null = null;
  let width = 0; // bucket width in seconds; 0: raw readings
  let generation = 0;
  let numeric: Set<string> | null = null;
  let lastSensor: LiveSensor | null = null;
  let latestForecast: Forecast | null = null;
  let forecastAsked = 0;

  function saveParams(): void {
    const p = new URLSearchParams();
    p.set('range', range);
    if (range === 'custom') {
      p.set('from', fromLocalInput(fromIn.value));
      p.set('to', fromLocalInput(toIn.value));
    }
    setRouteParams(p);
    for (const b of picker.querySelectorAll<HTMLButtonElement>('button')) b.classList.toggle('active', b.dataset.range === range);
    custom.classList.toggle('shown', range === 'custom');
  }

  // The range shown, in epoch seconds.
  function view(): [number, number] {
    if (range === 'custom') {
      const a = Date.parse(fromLocalInput(fromIn.value)) / 1000;
      const z = Date.parse(fromLocalInput(toIn.value)) / 1000;
      if (isFinite(a) && isFinite(z) && z > a) return [a, z];
      const now = Date.now() / 1000;
      return [now - HOUR, now];
    }
    const now = Date.now() / 1000;
    return [now - RANGES[range], now];
  }

  function showsForecast(): boolean {
    return FORECAST_RANGES.has(range);
  }

  // The x range drawn: the range shown, continued to the end of the forecast's last hour.
  function xRange(): [number, number] {
    const [a, z] = view();
    const hours = showsForecast() ? latestForecast?.hours ?? [] : [];
    if (hours.length === 0) return [a, z];
    return [a, Math.max(z, Date.parse(hours[hours.length - 1].target_hour) / 1000 + HOUR)];
  }

  function destroyCharts(): void {
    for (const c of charts) {
      c.stopResize();
      c.plot.destroy();
    }
    charts = [];
    axisGroup.reset();
    chartsEl.replaceChildren();
  }

  async function load(): Promise<void> {
    const gen = ++generation;
    userZoom = null;
    live.follow(null);
    const [from, to] = view();
    const span = to - from;
    const rate = lastSensor?.rate && lastSensor.rate > 0 ? lastSensor.rate : 1;
    width = rate * span <= MAX_RAW_POINTS ? 0 : NICE_WIDTHS.find((w) => span / w <= TARGET_POINTS) ?? 86400;
    info.textContent = 'Loading…';
    try {
      numeric ??= await numericColumns();
      const all = await sensors();
      const me = all.find((s) => s.sensor_id === id);
      const fields = (me?.fields ?? []).filter((f) => numeric!.has(f) && f !== 'lat' && f !== 'lon' && f !== 'sensor_id');
      if (gen !== generation) return;
      if (!me) {
        destroyCharts();
        info.textContent = `Sensor ${id} has no readings in the store.`;
        return;
      }
      if (fields.length === 0) {
        destroyCharts();
        info.textContent = `Sensor ${id} has no numeric fields.`;
        return;
      }
      const cols = fields.map(sqlName);
      const where = `sensor_id = ${id} AND ts >= ${sqlTime(from * 1000)} AND ts < ${sqlTime(to * 1000)}`;
      const seriesSql =
        width === 0
          ? `SELECT ts, ${cols.join(', ')} FROM readings WHERE ${where} ORDER BY ts`
          : `SELECT time_bucket('${widthLabel(width)}', ts) AS t, ${cols.map((c) => `avg(${c}), count(${c})`).join(', ')} ` +
            `FROM readings WHERE ${where} GROUP BY t ORDER BY t`;
      const hourFrom = Math.floor(from / HOUR) * HOUR;
      const bandSql =
        `SELECT time_bucket('1h', ts) AS hour, ${cols.map((c) => `min(${c}), max(${c}), avg(${c}), count(${c})`).join(', ')} ` +
        `FROM readings WHERE sensor_id = ${id} AND ts >= ${sqlTime(hourFrom * 1000)} AND ts < ${sqlTime(to * 1000)} GROUP BY hour ORDER BY hour`;
      const [series, bands, fc] = await Promise.all([
        query(seriesSql),
        query(bandSql),
        showsForecast() ? forecast(id).catch(() => null) : Promise.resolve(null),
      ]);
      if (gen !== generation) return;
      latestForecast = fc;
      forecastAsked = Date.now();
      destroyCharts();
      let points = 0;
      fields.forEach((field, k) => {
        const xs: number[] = [];
        const ys: (number | null)[] = [];
        const ns: number[] = [];
        for (const row of series.rows) {
          const v = width === 0 ? row[1 + k] : row[1 + 2 * k];
          if (typeof v !== 'number') continue;
          xs.push(Date.parse(row[0] as string) / 1000);
          ys.push(v);
          ns.push(width === 0 ? 1 : (row[2 + 2 * k] as number));
        }
        const band: Band = { x: [], min: [], max: [], mean: [], n: [] };
        for (const row of bands.rows) {
          const n = row[4 + 4 * k];
          if (typeof n !== 'number' || n === 0) continue;
          band.x.push(Date.parse(row[0] as string) / 1000);
          band.min.push(row[1 + 4 * k] as number);
          band.max.push(row[2 + 4 * k] as number);
          band.mean.push(row[3 + 4 * k] as number);
          band.n.push(n);
        }
        points += xs.length;
        const ahead = fc && fc.field === field ? fc.hours : [];
        charts.push(makeChart(field, PALETTE[k % PALETTE.length], xs, ys, ns, band, ahead));
      });
      // The first charts were laid out before the later ones widened the shared axis.
      for (const c of charts) c.plot.redraw(false, true);
      const last = lastTs();
      info.textContent =
        (width === 0 ? 'Every reading' : `Mean per ${widthLabel(width)}`) +
        ` from ${utc(from * 1000)} to ${utc(to * 1000)} UTC; the band is each hour's min–max, the dashed line its mean.` +
        (fc && charts.some((c) => c.forecast.length > 0)
          ? ` Past now, ${fc.field}'s forecast issued ${utc(fc.issued_at)} UTC (dotted) with its 80 % interval.`
          : '') +
        (points === 0 ? ` No readings in this range (last seen ${utc(me.last_seen)}).` : '');
      if (points === 0 && range !== 'custom') {
        const jump = el('button', { type: 'button' }, 'show the hour before the last reading');
        jump.addEventListener('click', () => {
          const end = Date.parse(me.last_seen) / 1000 + 60;
          fromIn.value = toLocalInput(end - HOUR);
          toIn.value = toLocalInput(end);
          range = 'custom';
          saveParams();
          load();
        });
        info.append(' ', jump);
      }
      // Live: only a range that ends now moves.
      if (range !== 'custom') live.follow(id, last !== null ? new Date(last * 1000).toISOString() : new Date(to * 1000).toISOString());
    } catch (e) {
      if (gen === generation) info.textContent = `Could not load: ${String((e as Error).message ?? e)}`;
    }
  }

  function lastTs(): number | null {
    let last: number | null = null;
    for (const c of charts) if (c.xs.length && (last === null || c.xs[c.xs.length - 1] > last)) last = c.xs[c.xs.length - 1];
    return last;
  }

  function maxGap(c: FieldChart): number {
    const step = width === 0 ? medianStep(c.xs) : width;
    return Math.max(3 * step, width === 0 ? 5 : 2.5 * width);
  }

  // [x, value, hour min, hour max, hour mean, (forecast, its 10 % and 90 % bounds)]: undefined where a series has no point at that x
  // (uPlot draws across it), null where a series has a gap (uPlot breaks the line).
  function aligned(c: FieldChart): uPlot.AlignedData {
    const gap = maxGap(c);
    const px: number[] = [];
    const py: (number | null)[] = [];
    for (let i = 0; i < c.xs.length; i++) {
      if (i > 0 && c.xs[i] - c.xs[i - 1] > gap) {
        px.push(c.xs[i - 1] + Math.min(gap, (c.xs[i] - c.xs[i - 1]) / 2));
        py.push(null);
      }
      px.push(c.xs[i]);
      py.push(c.ys[i]);
    }
    const bx: number[] = [];
    const bv: (number | null)[][] = [[], [], []];
    const b = c.band;
    for (let i = 0; i < b.x.length; i++) {
      bx.push(b.x[i]);
      bv[0].push(b.min[i]);
      bv[1].push(b.max[i]);
      bv[2].push(b.mean[i]);
      const next = i + 1 < b.x.length ? b.x[i + 1] : Infinity;
      if (next !== b.x[i] + HOUR) {
        // Hold the step to the hour's end, then break until the next hour with readings.
        bx.push(b.x[i] + HOUR - 0.001);
        bv[0].push(b.min[i]);
        bv[1].push(b.max[i]);
        bv[2].push(b.mean[i]);
        if (next !== Infinity) {
          bx.push(b.x[i] + HOUR);
          for (const v of bv) v.push(null);
        }
      }
    }
    const parts = [{ x: px, ys: [py] }, { x: bx, ys: bv }];
    if (c.forecast.length > 0) parts.push(forecastSteps(c.forecast));
    return merge(parts);
  }

  function setScaleAll(min: number, max: number): void {
    for (const c of charts) {
      c.plot.setScale('x', { min, max });
      c.box.dataset.zoomed = userZoom ? 'true' : 'false';
    }
  }

  function refresh(c: FieldChart): void {
    c.plot.setData(aligned(c), true);
    const [a, z] = userZoom ?? xRange();
    c.plot.setScale('x', { min: a, max: z });
    c.box.dataset.points = String(c.xs.length);
    c.box.dataset.lastTs = c.xs.length ? new Date(c.xs[c.xs.length - 1] * 1000).toISOString() : '';
    const gap = maxGap(c);
    let gaps = 0;
    for (let i = 1; i < c.xs.length; i++) if (c.xs[i] - c.xs[i - 1] > gap) gaps++;
    c.box.dataset.gaps = String(gaps);
    c.box.dataset.bandHours = String(c.band.x.length);
    c.box.dataset.forecastHours = String(c.forecast.length);
    if (c.forecast.length > 0) {
      c.box.dataset.forecastIssued = latestForecast?.issued_at ?? '';
      c.box.dataset.forecastValues = JSON.stringify(c.forecast.map((h) => h.value));
      c.box.dataset.forecastIntervalHours = String(c.forecast.filter((h) => h.lower !== null && h.upper !== null).length);
    }
  }

  function makeChart(field: string, color: string, xs: number[], ys: (number | null)[], ns: number[], band: Band,
                     ahead: ForecastHour[]): FieldChart {
    const box = el('div', { class: 'chart', 'data-field': field });
    const plotEl = el('div');
    box.append(el('h3', {}, field), plotEl);
    chartsEl.append(box);
    const stepped = uPlot.paths.stepped!({ align: 1 });
    const bandColor = 'rgba(120, 120, 120, 0.55)';
    const onUserScale = (_u: uPlot, min: number, max: number) => {
      userZoom = [min, max];
      setScaleAll(min, max);
    };
    const opts: uPlot.Options = {
      width: Math.max(300, chartsEl.clientWidth || 800),
      height: CHART_HEIGHT,
      tzDate: utcDate,
      cursor: {
        sync: { key: `sensor-${id}` },
        drag: { x: true, y: false, setScale: false },
        bind: { dblclick: () => () => null },
      },
      scales: { x: { time: true } },
      legend: { live: true },
      series: [
        { label: 'UTC' },
        { label: field, stroke: color, width: 1.5, spanGaps: false, points: { show: false } },
        { label: 'hour min', stroke: bandColor, width: 1, paths: stepped, points: { show: false } },
        { label: 'hour max', stroke: bandColor, width: 1, paths: stepped, points: { show: false } },
        { label: 'hour mean', stroke: '#333', width: 1, dash: [5, 4], paths: stepped, points: { show: false } },
        ...(ahead.length > 0
          ? [
              { label: 'forecast', stroke: FORECAST_COLOR, width: 2, dash: [2, 3], paths: stepped, points: { show: false } },
              { label: 'forecast 10 %', stroke: FORECAST_BAND, width: 1, paths: stepped, points: { show: false } },
              { label: 'forecast 90 %', stroke: FORECAST_BAND, width: 1, paths: stepped, points: { show: false } },
            ]
          : []),
      ],
      bands: [
        { series: [3, 2], fill: 'rgba(31, 111, 178, 0.10)' },
        ...(ahead.length > 0 ? [{ series: [7, 6] as [number, number], fill: 'rgba(217, 98, 43, 0.15)' }] : []),
      ],
      axes: [{ values: TIME_VALUES }, valueAxis(axisGroup)],
      plugins: [zoomPanPlugin(onUserScale)],
      hooks: {
        setScale: [
          (u: uPlot, key: string) => {
            if (key !== 'x') return;
            box.dataset.xMin = String(u.scales.x.min);
            box.dataset.xMax = String(u.scales.x.max);
          },
        ],
        setSelect: [
          (u: uPlot) => {
            if (u.select.width > 2) {
              const min = u.posToVal(u.select.left, 'x');
              const max = u.posToVal(u.select.left + u.select.width, 'x');
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
              onUserScale(u, min, max);
            }
          },
        ],
      },
    };
    const c: FieldChart = { field, box, plot: null as unknown as uPlot, xs, ys, ns, band, forecast: ahead, stopResize: () => {} };
    c.plot = new uPlot(opts, aligned(c), plotEl);
    c.plot.over.addEventListener('dblclick', () => {
      userZoom = null;
      const [a, z] = xRange();
      setScaleAll(a, z);
    });
    c.stopResize = autoWidth(c.plot, chartsEl, CHART_HEIGHT);
    refresh(c);
    return c;
  }

  // New readings of this sensor from the live stream.
  function onReadings(r: LiveReadings): void {
    if (r.sensor_id !== id || charts.length === 0 || range === 'custom') return;
    const tsIdx = r.columns.findIndex((c) => c.name === 'ts');
    if (tsIdx < 0) return;
    const [from] = view();
    for (const c of charts) {
      const k = r.columns.findIndex((col) => col.name === c.field);
      if (k < 0) continue;
      for (const row of r.rows) addPoint(c, Date.parse(row[tsIdx] as string) / 1000, row[k]);
      // The window slides: drop what fell out of it.
      let cut = 0;
      while (cut < c.xs.length && c.xs[cut] < from) cut++;
      if (cut > 0) {
        c.xs.splice(0, cut);
        c.ys.splice(0, cut);
        c.ns.splice(0, cut);
      }
      refresh(c);
    }
  }

  function addPoint(c: FieldChart, x: number, v: Cell): void {
    if (typeof v !== 'number' || !isFinite(x)) return;
    const n = c.xs.length;
    if (width === 0) {
      if (n > 0 && x <= c.xs[n - 1]) return; // already there (or late: shown after a reload)
      c.xs.push(x);
      c.ys.push(v);
      c.ns.push(1);
    } else {
      const bucket = Math.floor(x / width) * width;
      if (n > 0 && c.xs[n - 1] === bucket) {
        const m = c.ns[n - 1];
        c.ys[n - 1] = ((c.ys[n - 1] as number) * m + v) / (m + 1);
        c.ns[n - 1] = m + 1;
      } else if (n === 0 || bucket > c.xs[n - 1]) {
        c.xs.push(bucket);
        c.ys.push(v);
        c.ns.push(1);
      }
    }
    // The hour's band follows: min, max, and the running mean.
    const hour = Math.floor(x / HOUR) * HOUR;
    const b = c.band;
    const h = b.x.length - 1;
    if (h >= 0 && b.x[h] === hour) {
      b.min[h] = Math.min(b.min[h], v);
      b.max[h] = Math.max(b.max[h], v);
      b.mean[h] = (b.mean[h] * b.n[h] + v) / (b.n[h] + 1);
      b.n[h] += 1;
    } else if (h < 0 || hour > b.x[h]) {
      b.x.push(hour);
      b.min.push(v);
      b.max.push(v);
      b.mean.push(v);
      b.n.push(1);
    }
  }

  function showLatest(s: LiveSensor | undefined): void {
    if (!s) {
      healthEl.textContent = 'no readings';
      healthEl.className = 'health health-stale';
      return;
    }
    lastSensor = s;
    healthEl.className = `health health-${s.health}`;
    healthEl.textContent = s.health === 'fault' ? `fault: ${s.status}` : s.health === 'rejects' ? `${s.rejects} rejected` : s.health;
    const parts: (Node | string)[] = [`last seen ${ago(s.age_s)} (${utc(s.last_seen)} UTC) · ${num(s.rate, 2)} readings/s · ${num(s.readings)} readings`];
    if (s.position) parts.push(` · ${s.position.lat.toFixed(5)}, ${s.position.lon.toFixed(5)}`);
    const values = el('div', { class: 'values' });
    for (const [k, v] of Object.entries(s.values)) {
      values.append(el('span', { class: 'value' }, el('b', {}, k), ' ', typeof v === 'number' ? num(v, 2) : v));
    }
    latestEl.replaceChildren(el('div', {}, ...parts), values);
  }

  const offSnap = live.onSnapshot((snap) => {
    showLatest(snap.sensors.find((s) => s.sensor_id === id));
    // Relative ranges slide with the clock even when no reading came.
    if (!userZoom && range !== 'custom') {
      const [a, z] = xRange();
      setScaleAll(a, z);
    }
    // A newer forecast (one comes each hour) redraws the charts, unless the person is zoomed in.
    if (showsForecast() && !userZoom && Date.now() - forecastAsked > FORECAST_REFRESH_MS) {
      forecastAsked = Date.now();
      forecast(id)
        .then((fc) => {
          if (fc && fc.issued_at !== latestForecast?.issued_at && !userZoom) load();
        })
        .catch(() => {});
    }
  });
  const offReadings = live.onReadings(onReadings);
  saveParams();
  load();
  return () => {
    generation++;
    offSnap();
    offReadings();
    live.follow(null);
    destroyCharts();
  };
}

// <input type="datetime-local"> holds wall time without a zone; here it is UTC.
function toLocalInput(sec: number): string {
  return new Date(sec * 1000).toISOString().slice(0, 19);
}

function fromLocalInput(v: string): string {
  if (!v) return '';
  return (v.length === 16 ? v + ':00' : v) + 'Z';
}

const FORECAST_COLOR = '#d9622b';
const FORECAST_BAND = 'rgba(217, 98, 43, 0.45)';

// A forecast's hours as stepped series (mean, 10 %, 90 %): each value holds from its hour's start
// to its end; an hour without a value is a gap.
function forecastSteps(hours: ForecastHour[]): { x: number[]; ys: (number | null)[][] } {
  const x: number[] = [];
  const ys: (number | null)[][] = [[], [], []];
  hours.forEach((h, i) => {
    const at = Date.parse(h.target_hour) / 1000;
    x.push(at);
    ys[0].push(h.value);
    ys[1].push(h.lower);
    ys[2].push(h.upper);
    if (i === hours.length - 1) {
      x.push(at + HOUR - 0.001);
      ys[0].push(h.value);
      ys[1].push(h.lower);
      ys[2].push(h.upper);
    }
  });
  return { x, ys };
}

// Series on their own x lists (each sorted) as uPlot's aligned data: the union of the x values,
// and each series undefined where it has no point (uPlot draws across it; null breaks the line).
function merge(parts: { x: number[]; ys: (number | null)[][] }[]): uPlot.AlignedData {
  const xs = Array.from(new Set(parts.flatMap((p) => p.x))).sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  const columns: (number | null | undefined)[][] = [];
  for (const p of parts) {
    for (const y of p.ys) {
      const column: (number | null | undefined)[] = new Array(xs.length).fill(undefined);
      p.x.forEach((x, i) => {
        column[at.get(x)!] = y[i];
      });
      columns.push(column);
    }
  }
  return [xs, ...columns] as uPlot.AlignedData;
}
