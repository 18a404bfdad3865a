// Stats: the hourly and daily rollups of a sensor, field by field — count, min, max, mean,
// population stddev, first and last, the same definitions as the rollups topic and the
// observatory's MariaDB tables — sortable and downloadable as CSV. Computed by SQL over the
// store; windows the rollups have not closed yet are marked "open". Below, the sensor's forecast
// models: each one's MAE over the last 30 days and skill against persistence, and which is in use.
import { forecastSkill, numericColumns, query, sensors, sqlName, sqlTime, type Cell } from '../api';
import { live } from '../live';
import { download, el, num, routeParams, setRouteParams, toCsv, utc } from '../format';

const COLUMNS = ['sensor_id', 'window_start', 'field', 'count', 'min', 'max', 'mean', 'stddev', 'first', 'last'] as const;
type Row = [number, string, string, number, number, number, number, number, number, number];
const NUMERIC = new Set([0, 3, 4, 5, 6, 7, 8, 9]);
const DEFAULT_SPAN: Record<string, number> = { '1h': 48 * 3600, '1d': 31 * 86400 };
const MAX_ROWS = 20000;

export function mount(root: HTMLElement): () => void {
  const params = routeParams();
  const sensorSel = el('select', { id: 'stats-sensor' }) as HTMLSelectElement;
  const resSel = el('select', { id: 'stats-resolution' },
    el('option', { value: '1h' }, 'hourly'), el('option', { value: '1d' }, 'daily')) as HTMLSelectElement;
  const fieldSel = el('select', { id: 'stats-field' }, el('option', { value: '' }, 'all fields')) as HTMLSelectElement;
  const fromIn = el('input', { type: 'date', id: 'stats-from' }) as HTMLInputElement;
  const toIn = el('input', { type: 'date', id: 'stats-to' }) as HTMLInputElement;
  const csvBtn = el('button', { type: 'button', id: 'stats-csv' }, 'Download CSV');
  const info = el('div', { class: 'muted', id: 'stats-info' });
  const table = el('table', { class: 'grid stats', id: 'stats-table' });
  const skillInfo = el('div', { class: 'muted', id: 'forecast-skill-info' });
  const skillTable = el('table', { class: 'grid', id: 'forecast-skill' });
  root.append(
    el('section', { class: 'stats-view' },
      el('h1', {}, 'Rollups'),
      el('div', { class: 'panel' },
        el('div', { class: 'toolbar' },
          el('label', {}, 'sensor ', sensorSel), el('label', {}, 'windows ', resSel), el('label', {}, 'field ', fieldSel),
          el('label', {}, 'from ', fromIn), el('label', {}, 'to ', toIn), el('span', { class: 'muted' }, '(UTC, inclusive)'), csvBtn),
        info,
        el('div', { class: 'table-wrap tall' }, table)),
      el('h2', {}, 'Forecast models'),
      el('div', { class: 'panel' }, skillInfo, el('div', { class: 'table-wrap' }, skillTable)),
    ),
  );

  resSel.value = params.get('res') === '1d' ? '1d' : '1h';
  let rows: Row[] = [];
  let sortCol = 1;
  let sortDesc = true;
  let watermark: number | null = null;
  let generation = 0;

  function defaultDates(): void {
    const now = Date.now();
    fromIn.value = new Date(now - DEFAULT_SPAN[resSel.value]).toISOString().slice(0, 10);
    toIn.value = new Date(now).toISOString().slice(0, 10);
  }
  if (params.get('from') && params.get('to')) {
    fromIn.value = params.get('from')!;
    toIn.value = params.get('to')!;
  } else {
    defaultDates();
  }

  function save(): void {
    const p = new URLSearchParams();
    if (sensorSel.value) p.set('sensor', sensorSel.value);
    p.set('res', resSel.value);
    if (fieldSel.value) p.set('field', fieldSel.value);
    p.set('from', fromIn.value);
    p.set('to', toIn.value);
    setRouteParams(p);
  }

  async function init(): Promise<void> {
    const [all, numeric] = await Promise.all([sensors(), numericColumns()]);
    sensorSel.replaceChildren(el('option', { value: '' }, 'all sensors'));
    for (const s of all) sensorSel.append(el('option', { value: String(s.sensor_id) }, String(s.sensor_id)));
    const wanted = params.get('sensor');
    sensorSel.value = wanted && all.some((s) => String(s.sensor_id) === wanted) ? wanted : all.length ? String(all[0].sensor_id) : '';
    const fields = new Set<string>();
    for (const s of all) for (const f of s.fields) if (numeric.has(f) && f !== 'lat' && f !== 'lon') fields.add(f);
    for (const f of [...fields].sort()) fieldSel.append(el('option', { value: f }, f));
    fieldSel.value = params.get('field') && fields.has(params.get('field')!) ? params.get('field')! : '';
    fieldSel.dataset.fields = JSON.stringify([...fields].sort());
    await load();
  }

  // The forecast models of the chosen sensor (its first forecast field), as the processor
  // judged them at its latest day-ahead forecast.
  async function loadSkill(gen: number): Promise<void> {
    skillTable.dataset.state = 'loading';
    const id = Number(sensorSel.value);
    const s = sensorSel.value ? await forecastSkill(id).catch(() => null) : null;
    if (gen !== generation) return;
    if (!s) {
      skillTable.replaceChildren();
      skillInfo.textContent = sensorSel.value ? `No forecast for sensor ${id} yet.` : 'Choose a sensor to see its forecast models.';
      skillTable.dataset.state = 'empty';
      return;
    }
    const head = el('tr', {}, ...['model', 'MAE (30 d)', 'skill vs persistence', 'weight', 'hours', ''].map((h, i) =>
      el('th', { class: i >= 1 && i <= 4 ? 'num' : '' }, h)));
    const body = el('tbody');
    for (const m of s.models) {
      const inUse = m.model === s.in_use;
      const tr = el('tr', { 'data-model': m.model, 'data-in-use': inUse ? 'true' : 'false', 'data-mae': String(m.mae), 'data-skill': String(m.skill) },
        el('td', {}, m.model),
        el('td', { class: 'num' }, m.mae === null ? '–' : num(m.mae, 3)),
        el('td', { class: 'num' }, m.skill === null ? '–' : num(m.skill, 3)),
        el('td', { class: 'num' }, m.weight === null ? '–' : num(m.weight, 2)),
        el('td', { class: 'num' }, num(m.hours, 0)),
        el('td', {}, inUse ? 'in use' : m.model === s.leading ? 'leads the ensemble' : ''));
      if (inUse) tr.classList.add('in-use');
      body.append(tr);
    }
    skillTable.replaceChildren(el('thead', {}, head), body);
    skillInfo.textContent =
      `Sensor ${s.sensor_id} ${s.field}: day-ahead forecasts (issued 00:00 UTC) judged over the ${s.days} days before ` +
      `${utc(s.as_of)} UTC. Issued: the ${s.in_use}, each model weighted by its recent error` +
      (s.leading ? `; ${s.leading} weighs most.` : '.');
    skillTable.dataset.state = 'ready';
  }

  async function load(): Promise<void> {
    const gen = ++generation;
    save();
    loadSkill(gen).catch(() => undefined);
    const fields: string[] = fieldSel.value ? [fieldSel.value] : JSON.parse(fieldSel.dataset.fields ?? '[]');
    table.dataset.state = 'loading';
    if (fields.length === 0) {
      rows = [];
      render();
      info.textContent = 'No numeric fields in the store yet.';
      table.dataset.state = 'ready';
      return;
    }
    const from = Date.parse(fromIn.value + 'T00:00:00Z');
    const to = Date.parse(toIn.value + 'T00:00:00Z') + 86400e3;
    const res = resSel.value;
    const cols = fields.map(sqlName);
    const sql =
      `SELECT sensor_id, time_bucket('${res}', ts) AS window_start, ` +
      cols.map((c) => `count(${c}), min(${c}), max(${c}), avg(${c}), stddev_pop(${c}), first(${c}), last(${c})`).join(', ') +
      ` FROM readings WHERE ${sensorSel.value ? `sensor_id = ${Number(sensorSel.value)} AND ` : ''}` +
      `ts >= ${sqlTime(from)} AND ts < ${sqlTime(to)} GROUP BY sensor_id, window_start ORDER BY window_start`;
    info.textContent = 'Loading…';
    try {
      const r = await query(sql);
      if (gen !== generation) return;
      rows = [];
      for (const row of r.rows) {
        fields.forEach((f, k) => {
          const b = 2 + 7 * k;
          const n = row[b] as number;
          if (!n) return;
          rows.push([row[0] as number, row[1] as string, f, n, ...(row.slice(b + 1, b + 7) as number[])] as Row);
        });
      }
      render();
      info.textContent =
        `${rows.length} ${res === '1h' ? 'hourly' : 'daily'} windows of ${sensorSel.value ? `sensor ${sensorSel.value}` : 'every sensor'}` +
        ` from ${fromIn.value} to ${toIn.value}; stddev is the population's. ` +
        (watermark !== null ? `Windows ending after the rollups' watermark (${utc(watermark)} UTC) are still open.` : '') +
        (rows.length > MAX_ROWS ? ` Showing the first ${MAX_ROWS}; the CSV has them all.` : '');
      table.dataset.state = 'ready';
    } catch (e) {
      if (gen !== generation) return;
      info.textContent = `Could not load: ${String((e as Error).message ?? e)}`;
      table.dataset.state = 'error';
    }
  }

  function sorted(): Row[] {
    const k = sortCol;
    const dir = sortDesc ? -1 : 1;
    return [...rows].sort((a, b) => {
      const x = a[k];
      const y = b[k];
      const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
      // Ties: newest window first, then field, then sensor.
      return c !== 0 ? c * dir : b[1].localeCompare(a[1]) || a[2].localeCompare(b[2]) || a[0] - b[0];
    });
  }

  function windowEnd(start: string): number {
    return Date.parse(start) + (resSel.value === '1h' ? 3600e3 : 86400e3);
  }

  function render(): void {
    const head = el('tr');
    COLUMNS.forEach((name, i) => {
      const th = el('th', { class: NUMERIC.has(i) ? 'num sortable' : 'sortable', 'data-col': name },
        name + (i === sortCol ? (sortDesc ? ' ▼' : ' ▲') : ''));
      th.addEventListener('click', () => {
        if (sortCol === i) sortDesc = !sortDesc;
        else {
          sortCol = i;
          sortDesc = i === 1;
        }
        render();
      });
      head.append(th);
    });
    const body = el('tbody');
    for (const r of sorted().slice(0, MAX_ROWS)) {
      const open = watermark !== null && windowEnd(r[1]) > watermark;
      const tr = el('tr', {
        'data-sensor': String(r[0]),
        'data-window': r[1],
        'data-field': r[2],
        'data-open': open ? 'true' : 'false',
      });
      r.forEach((v, i) => {
        const text = i === 1 ? utc(v as string, false) + (open ? ' (open)' : '') : typeof v === 'number' ? num(v, i === 3 || i === 0 ? 0 : 3) : String(v);
        const td = el('td', { class: NUMERIC.has(i) ? 'num' : '', 'data-col': COLUMNS[i], 'data-value': String(v) }, text);
        tr.append(td);
      });
      if (open) tr.classList.add('open');
      body.append(tr);
    }
    table.replaceChildren(el('thead', {}, head), body);
    table.dataset.rows = String(rows.length);
  }

  csvBtn.addEventListener('click', () => {
    const data = sorted().map((r) => r as unknown as Cell[]);
    const name = `rollup_${resSel.value === '1h' ? 'hour' : 'day'}${sensorSel.value ? '_sensor' + sensorSel.value : ''}_${fromIn.value}_${toIn.value}.csv`;
    download(name, toCsv([...COLUMNS], data));
  });
  resSel.addEventListener('change', () => {
    defaultDates();
    load();
  });
  for (const c of [sensorSel, fieldSel, fromIn, toIn]) c.addEventListener('change', () => load());

  const off = live.onSnapshot((snap) => {
    const w = snap.pipeline.rollup.watermark;
    const next = w ? Date.parse(w) : null;
    if (next !== watermark) {
      const before = watermark;
      watermark = next;
      // Re-mark open windows when the watermark crosses a window end.
      if (rows.length && (before === null || next === null || Math.floor(before / 3600e3) !== Math.floor(next / 3600e3))) render();
    }
  });
  init().catch((e) => (info.textContent = `Could not load: ${String((e as Error).message ?? e)}`));
  return () => {
    generation++;
    off();
  };
}
