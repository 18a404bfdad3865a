// SQL console: an editor (Ctrl+Enter runs), the result as a table and as a chart, a bad
// statement's error marked at its line and column, CSV download. The dialect: docs/sql.md.
import { query, queryCsv, SqlError, type QueryResult } from '../api';
import { cellText, download, el, num, routeParams, setRouteParams } from '../format';
import { PALETTE, TIME_VALUES, autoWidth, uPlot, utcDate, valueAxis } from '../chart';

const EXAMPLE = `SELECT time_bucket('1h', ts) AS hour, sensor_id,
       min(temperature), max(temperature), avg(temperature), count(*)
FROM readings
WHERE ts > now() - INTERVAL '1 day'
GROUP BY hour, sensor_id
ORDER BY hour`;
const MAX_TABLE_ROWS = 2000;
const MAX_SERIES = 16;

export function mount(root: HTMLElement): () => void {
  const params = routeParams();
  const editor = el('textarea', { id: 'sql-editor', spellcheck: 'false', rows: '8', wrap: 'off', 'aria-label': 'SQL statement' }) as HTMLTextAreaElement;
  const highlight = el('pre', { class: 'editor-highlight', 'aria-hidden': 'true' });
  const gutter = el('pre', { class: 'editor-gutter', 'aria-hidden': 'true' });
  const run = el('button', { type: 'button', id: 'sql-run', class: 'primary' }, 'Run');
  const csv = el('button', { type: 'button', id: 'sql-csv' }, 'Download CSV');
  const status = el('span', { class: 'muted', id: 'sql-status' });
  const errorBox = el('div', { class: 'sql-error', id: 'sql-error', hidden: '' });
  const tabs = el('div', { class: 'tabs' });
  const tableWrap = el('div', { class: 'table-wrap tall', id: 'sql-result' });
  const chartWrap = el('div', { class: 'sql-chart', id: 'sql-chart', hidden: '' });
  root.append(
    el('section', { class: 'sql-view' },
      el('h1', {}, 'SQL'),
      el('div', { class: 'panel' },
        el('div', { class: 'editor' }, gutter, el('div', { class: 'editor-area' }, highlight, editor)),
        el('div', { class: 'toolbar' }, run, csv, status,
          el('span', { class: 'muted right' }, 'Ctrl+Enter runs · the dialect: ', el('code', {}, 'docs/sql.md'))),
        errorBox),
      el('div', { class: 'panel' }, tabs, tableWrap, chartWrap),
    ),
  );

  editor.value = params.get('q') ?? EXAMPLE;
  let plot: uPlot | null = null;
  let stopResize = () => {};
  let shown: 'table' | 'chart' = params.get('view') === 'chart' ? 'chart' : 'table';
  let last: QueryResult | null = null;
  let errorAt: { line: number; column: number } | null = null;

  for (const t of ['table', 'chart'] as const) {
    const b = el('button', { type: 'button', 'data-tab': t }, t === 'table' ? 'Table' : 'Chart');
    b.addEventListener('click', () => {
      shown = t;
      showTab();
    });
    tabs.append(b);
  }

  function showTab(): void {
    for (const b of tabs.querySelectorAll<HTMLButtonElement>('button')) b.classList.toggle('active', b.dataset.tab === shown);
    tableWrap.hidden = shown !== 'table';
    chartWrap.hidden = shown !== 'chart';
    if (shown === 'chart' && last) drawChart(last);
    const p = routeParams();
    p.set('q', editor.value);
    p.set('view', shown);
    setRouteParams(p);
  }

  function syncEditor(): void {
    const lines = editor.value.split('\n').length;
    gutter.textContent = Array.from({ length: lines }, (_, i) => String(i + 1)).join('\n');
    renderHighlight();
    gutter.scrollTop = editor.scrollTop;
    highlight.scrollTop = editor.scrollTop;
    highlight.scrollLeft = editor.scrollLeft;
  }

  // The mirror behind the transparent textarea marks the error's token.
  function renderHighlight(): void {
    highlight.replaceChildren();
    const text = editor.value + '\n';
    if (!errorAt) {
      highlight.append(text);
      return;
    }
    const at = offsetOf(editor.value, errorAt.line, errorAt.column);
    let end = at;
    while (end < editor.value.length && /[^\s,;()]/.test(editor.value[end])) end++;
    if (end === at) end = Math.min(at + 1, text.length);
    highlight.append(text.slice(0, at), el('mark', { class: 'error-mark', id: 'sql-error-mark', 'data-line': String(errorAt.line), 'data-column': String(errorAt.column) }, text.slice(at, end) || ' '), text.slice(end));
  }

  async function execute(): Promise<void> {
    const sql = editor.value;
    const p = routeParams();
    p.set('q', sql);
    p.set('view', shown);
    setRouteParams(p);
    status.textContent = 'Running…';
    status.dataset.state = 'running';
    errorBox.hidden = true;
    errorAt = null;
    renderHighlight();
    try {
      const r = await query(sql);
      last = r;
      status.textContent = `${num(r.row_count)} rows in ${r.elapsed_ms.toFixed(1)} ms` +
        (r.stats ? ` · blocks: ${r.stats.blocks_skipped ?? 0} skipped, ${r.stats.blocks_from_stats ?? 0} from statistics, ${r.stats.blocks_decoded ?? 0} decoded` : '');
      status.dataset.state = 'done';
      drawTable(r);
      if (shown === 'chart') drawChart(r);
      else chartStale = true;
    } catch (e) {
      last = null;
      status.textContent = '';
      status.dataset.state = 'error';
      tableWrap.replaceChildren();
      destroyPlot();
      showError(e);
    }
  }
  let chartStale = false;

  function showError(e: unknown): void {
    errorBox.hidden = false;
    errorBox.replaceChildren();
    if (!(e instanceof SqlError)) {
      errorBox.append(String((e as Error).message ?? e));
      return;
    }
    const { line, column } = e.body;
    errorBox.append(el('div', { class: 'message', id: 'sql-error-message' }, e.body.error));
    if (line && column) {
      errorAt = { line, column };
      renderHighlight();
      // The statement's line with a caret under the column (columns count bytes).
      const src = editor.value.split('\n')[line - 1] ?? '';
      const chars = charColumn(src, column);
      errorBox.append(el('pre', { class: 'caret', id: 'sql-error-caret' }, `${String(line).padStart(3)} | ${src}\n    | ${' '.repeat(chars)}^`));
      const offset = offsetOf(editor.value, line, column);
      editor.focus();
      editor.setSelectionRange(offset, offset);
    }
  }

  function drawTable(r: QueryResult): void {
    const head = el('tr');
    for (const c of r.columns) head.append(el('th', { class: isNum(c.type) ? 'num' : '', title: c.type }, c.name));
    const body = el('tbody');
    for (const row of r.rows.slice(0, MAX_TABLE_ROWS)) {
      const tr = el('tr');
      row.forEach((v, i) => tr.append(el('td', { class: (isNum(r.columns[i].type) ? 'num' : '') + (v === null ? ' null' : '') }, cellText(v))));
      body.append(tr);
    }
    const table = el('table', { class: 'grid', id: 'sql-table', 'data-rows': String(r.rows.length) }, el('thead', {}, head), body);
    tableWrap.replaceChildren(table);
    if (r.rows.length > MAX_TABLE_ROWS) tableWrap.append(el('p', { class: 'muted' }, `Showing ${MAX_TABLE_ROWS} of ${r.rows.length} rows; the CSV has them all.`));
  }

  function destroyPlot(): void {
    stopResize();
    plot?.destroy();
    plot = null;
    chartWrap.replaceChildren();
  }

  // x: the first timestamp column (else the first numeric one). y: every other numeric column,
  // one series per value of a grouping column (sensor_id, or a text column) when there is one.
  function drawChart(r: QueryResult): void {
    chartStale = false;
    destroyPlot();
    const xi = r.columns.findIndex((c) => c.type === 'timestamp') >= 0 ? r.columns.findIndex((c) => c.type === 'timestamp') : r.columns.findIndex((c) => isNum(c.type));
    if (xi < 0 || r.rows.length === 0) {
      chartWrap.append(el('p', { class: 'muted' }, 'Nothing to chart: the result needs a timestamp or numeric column and rows.'));
      return;
    }
    const isTime = r.columns[xi].type === 'timestamp';
    const groupI = r.columns.findIndex((c, i) => i !== xi && (c.name === 'sensor_id' || c.type === 'text'));
    const measures = r.columns.map((_c, i) => i).filter((i) => i !== xi && i !== groupI && isNum(r.columns[i].type));
    if (measures.length === 0) {
      chartWrap.append(el('p', { class: 'muted' }, 'Nothing to chart: no numeric column besides the x axis.'));
      return;
    }
    const xOf = (v: unknown) => (isTime ? Date.parse(v as string) / 1000 : (v as number));
    const groups = groupI >= 0 ? [...new Set(r.rows.map((row) => cellText(row[groupI])))] : [''];
    const keys: { g: string; m: number }[] = [];
    for (const g of groups) for (const m of measures) if (keys.length < MAX_SERIES) keys.push({ g, m });
    const xs = [...new Set(r.rows.map((row) => xOf(row[xi])).filter((x) => typeof x === 'number' && isFinite(x)))].sort((a, b) => a - b);
    const at = new Map(xs.map((x, i) => [x, i]));
    const ys = keys.map(() => new Array<number | null>(xs.length).fill(null));
    for (const row of r.rows) {
      const i = at.get(xOf(row[xi]));
      if (i === undefined) continue;
      const g = groupI >= 0 ? cellText(row[groupI]) : '';
      keys.forEach((k, s) => {
        if (k.g === g && typeof row[k.m] === 'number') ys[s][i] = row[k.m] as number;
      });
    }
    const series: uPlot.Series[] = [{ label: r.columns[xi].name }];
    keys.forEach((k, s) => {
      const name = r.columns[k.m].name;
      series.push({
        label: groupI >= 0 ? `${r.columns[groupI].name}=${k.g} ${measures.length > 1 ? name : ''}`.trim() : name,
        stroke: PALETTE[s % PALETTE.length],
        width: 1.5,
        spanGaps: true,
        points: { show: xs.length < 60 },
      });
    });
    const height = 320;
    plot = new uPlot(
      {
        width: Math.max(300, chartWrap.clientWidth || 800),
        height,
        tzDate: utcDate,
        scales: { x: { time: isTime } },
        series,
        axes: [isTime ? { values: TIME_VALUES } : {}, valueAxis()],
      },
      [xs, ...ys] as uPlot.AlignedData,
      chartWrap,
    );
    chartWrap.dataset.series = String(keys.length);
    stopResize = autoWidth(plot, chartWrap, height);
  }

  run.addEventListener('click', () => execute());
  csv.addEventListener('click', async () => {
    try {
      download('query.csv', await queryCsv(editor.value));
    } catch (e) {
      showError(e);
    }
  });
  editor.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') {
      e.preventDefault();
      execute();
    }
    if (e.key === 'Tab') {
      e.preventDefault();
      editor.setRangeText('  ', editor.selectionStart, editor.selectionEnd, 'end');
      syncEditor();
    }
  });
  editor.addEventListener('input', () => {
    errorAt = null;
    syncEditor();
  });
  editor.addEventListener('scroll', syncEditor);
  tabs.addEventListener('click', () => {
    if (shown === 'chart' && chartStale && last) drawChart(last);
  });

  syncEditor();
  showTab();
  if (params.get('q')) execute();
  return () => destroyPlot();
}

function isNum(t: string): boolean {
  return t === 'integer' || t === 'double';
}

// The character offset in `text` of a 1-based line and a 1-based column counted in bytes.
function offsetOf(text: string, line: number, column: number): number {
  const lines = text.split('\n');
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
  return Math.min(text.length, offset + charColumn(lines[line - 1] ?? '', column));
}

// Characters before a 1-based byte column of one line.
function charColumn(line: string, column: number): number {
  const bytes = new TextEncoder().encode(line);
  return new TextDecoder().decode(bytes.slice(0, Math.max(0, column - 1))).length;
}
