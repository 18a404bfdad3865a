// Pipeline health: ingest rate (with the last minutes' history), each source that is on with its
// totals and rates, rejects by reason, the log's size and retention, consumer lags, the store,
// the rollups and the sinks. From the metrics registry, through GET /api/v1/pipeline and the
// live snapshots. When the roles run apart (on Kafka), the server merges the other roles' figures
// from their statuses, and a role silent for too long is said at the top and on its stage.
import { getJson, type PipelineHealth, type PipelineHistory } from '../api';
import { live } from '../live';
import { ago, bytes, el, num, utc } from '../format';
import { TIME_VALUES, autoWidth, uPlot, utcDate, valueAxis } from '../chart';

const HISTORY_SECONDS = 600;
// The stage each role runs, for saying on that stage's card that its figures are old.
const STAGE_OF_ROLE: Record<string, string> = { ingest: 'Sources', stream: 'Rollups', store: 'Store' };
// What each source the server lists takes (every one that is on is listed).
const SOURCES: Record<string, string> = {
  udp: 'JSON readings over UDP',
  tcp: 'NDJSON over TCP',
  unix: 'NDJSON over the unix socket',
  http: 'POST /api/v1/ingest',
  line_http: 'InfluxDB line protocol: POST /write and /api/v2/write',
  line_tcp: 'InfluxDB line protocol over TCP',
  line_udp: 'InfluxDB line protocol over UDP',
  mqtt: 'MQTT topics of the broker (connections: 1 while connected)',
};

export function mount(root: HTMLElement): () => void {
  const rateNow = el('div', { class: 'big', id: 'ingest-rate' }, '—');
  const rateSub = el('div', { class: 'muted' });
  const chartEl = el('div', { class: 'rate-chart' });
  const cards = el('div', { class: 'cards', id: 'pipeline-cards' });
  const staleRoles = el('div', { id: 'stale-roles' });
  root.append(
    el('section', { class: 'pipeline-view' },
      el('h1', {}, 'Pipeline'),
      staleRoles,
      el('div', { class: 'panel' }, el('h2', {}, 'Ingest'), rateNow, rateSub, chartEl),
      cards,
    ),
  );

  const xs: number[] = [];
  const acc: number[] = [];
  const rej: number[] = [];
  const plot = new uPlot(
    {
      width: Math.max(300, chartEl.clientWidth || 800),
      height: 180,
      tzDate: utcDate,
      scales: { x: { time: true } },
      series: [
        { label: 'UTC' },
        { label: 'accepted /s', stroke: '#1f6fb2', width: 1.5, fill: 'rgba(31,111,178,0.08)', points: { show: false } },
        { label: 'rejected /s', stroke: '#c23b5a', width: 1.5, points: { show: false } },
      ],
      axes: [{ values: TIME_VALUES }, valueAxis()],
    },
    [xs, acc, rej],
    chartEl,
  );
  const stopResize = autoWidth(plot, chartEl, 180);

  function push(t: number, a: number, r: number): void {
    // The history may arrive after the first live snapshots: keep the points in time order.
    let i = xs.length;
    while (i > 0 && xs[i - 1] > t) i--;
    if (i > 0 && xs[i - 1] === t) return;
    xs.splice(i, 0, t);
    acc.splice(i, 0, a);
    rej.splice(i, 0, r);
    while (xs.length && xs[0] < t - HISTORY_SECONDS) {
      xs.shift();
      acc.shift();
      rej.shift();
    }
  }

  function table(headers: string[], rows: (string | Node)[][], id: string): HTMLTableElement {
    const t = el('table', { class: 'grid compact', id });
    t.append(el('thead', {}, el('tr', {}, ...headers.map((h, i) => el('th', { class: i > 0 ? 'num' : '' }, h)))));
    const body = el('tbody');
    for (const r of rows) body.append(el('tr', {}, ...r.map((c, i) => el('td', { class: i > 0 ? 'num' : '' }, c))));
    if (rows.length === 0) body.append(el('tr', {}, el('td', { colspan: String(headers.length), class: 'muted' }, 'none')));
    t.append(body);
    return t;
  }

  function card(title: string, ...content: (Node | string)[]): HTMLElement {
    return el('div', { class: 'panel card' }, el('h2', {}, title), ...content);
  }

  function wideCard(title: string, ...content: (Node | string)[]): HTMLElement {
    const c = card(title, ...content);
    c.classList.add('wide');
    return c;
  }

  function kv(pairs: [string, string | Node][]): HTMLElement {
    const dl = el('dl', { class: 'kv' });
    for (const [k, v] of pairs) dl.append(el('dt', {}, k), el('dd', {}, v));
    return dl;
  }

  // "stream a on host2: no status for 40 s", for a role whose newest status is stale.
  function silent(r: PipelineHealth['roles'][number]): string {
    return `${r.role} ${r.instance}${r.host ? ` on ${r.host}` : ''}: no status for ${Math.round(r.age_s)} s`;
  }

  function render(p: PipelineHealth): void {
    const roles = p.roles ?? [];
    const stale = roles.filter((r) => r.stale);
    staleRoles.replaceChildren(...stale.map((r) => el('div', { class: 'panel stale-role' }, `${silent(r)} — its figures below are its last`)));
    // The note on a stage's card when a role that runs it is silent.
    const staleOn = (stage: string): Node[] => stale
      .filter((r) => STAGE_OF_ROLE[r.role] === stage || (stage === 'Sinks' && r.role.endsWith(' sink')))
      .map((r) => el('div', { class: 'note stale-note' }, silent(r)));
    rateNow.textContent = `${num(p.accepted_per_s, 1)} readings/s`;
    rateSub.textContent = `${num(p.rejected_per_s, 1)} rejected/s · ${num(p.accepted_total)} accepted and ${num(p.rejected_total)} rejected since mare run started ${ago(p.uptime_s)}`;
    push(Date.parse(p.time) / 1000, p.accepted_per_s, p.rejected_per_s);
    plot.setData([xs, acc, rej]);

    const reasons = Object.entries(p.rejects_by_reason).sort((a, b) => b[1] - a[1]);
    const watermark = p.rollup.watermark ? `${utc(p.rollup.watermark)} UTC` : '—';
    cards.replaceChildren(
      wideCard('Sources', table(['source', 'received', 'accepted', 'rejected', 'accepted /s', 'rejected /s', 'connections'],
        p.sources.map((s) => [el('span', { title: SOURCES[s.source] ?? s.source }, s.source), num(s.received), num(s.accepted), num(s.rejected),
          num(s.accepted_per_s, 1), num(s.rejected_per_s, 1), s.connections === null ? '—' : num(s.connections)]), 'sources-table'),
        kv([['UDP kernel drops', num(p.udp_kernel_drops)]]), ...staleOn('Sources')),
      card('Rejects by reason', table(['reason', 'readings'], reasons.map(([r, n]) => [r, num(n)]), 'rejects-table'),
        kv([['kept in dead-letter file', num(p.dead_letter.written)], ['only counted (file full)', num(p.dead_letter.dropped)],
          ['without a sensor id', num(p.dead_letter.unattributed)]])),
      card('Log', table(['topic', 'on disk', 'end offset', 'appended', 'deleted'],
        p.log.topics.map((t) => [t.topic, bytes(t.bytes), num(t.end_offset), num(t.records_appended), num(t.segments_deleted)]), 'log-table'),
        el('div', { class: 'muted note' }, 'end offset: records ever appended · appended: since mare run started · deleted: segments removed by retention'),
        kv([['retention', p.log.retention + (p.log.retention_bytes > 0 ? ` or ${bytes(p.log.retention_bytes)} per partition` : '')], ['fsync', p.log.fsync]])),
      card('Consumer lags', table(['consumer', 'records behind'], p.lags.map((l) => [l.consumer, num(l.records)]), 'lags-table')),
      card('Rollups', kv([
        ['status', p.rollup.enabled ? 'running' : 'disabled'], ['watermark', watermark], ['lateness', p.rollup.lateness],
        ['open windows', num(p.rollup.open_windows)], ['readings', num(p.rollup.readings)], ['emitted', num(p.rollup.emitted)],
        ['dropped late', num(p.rollup.dropped_late)]]), ...staleOn('Rollups')),
      card('Store', kv([
        ['status', p.store.enabled ? 'running' : 'disabled'], ['readings', num(p.store.rows)], ['in memtable', num(p.store.memtable_rows)],
        ['segments', num(p.store.segments)], ['on disk', bytes(p.store.bytes)], ['retention', p.store.retention],
        ['queries', `${num(p.queries.ok)} ok, ${num(p.queries.invalid)} invalid, ${num(p.queries.failed)} failed`]]), ...staleOn('Store')),
      card('Sinks', table(['sink', 'status', 'rows written', 'errors', 'lag'],
        p.sinks.map((s) => {
          const st = el('span', { class: `health health-${!s.enabled ? 'stale' : s.connected ? 'ok' : 'fault'}` }, !s.enabled ? 'disabled' : s.connected ? 'connected' : 'disconnected');
          return [s.sink, st, num(s.rows_written), num(s.errors), num(s.lag_records)];
        }), 'sinks-table'), ...staleOn('Sinks')),
      wideCard('Processes', table(['role', 'instance', 'host', 'status', 'last status'],
        roles.map((r) => [r.role, r.instance, r.local ? 'this process' : (r.host ?? '—'),
          el('span', { class: `health health-${r.stale ? 'fault' : 'ok'}` }, r.stale ? `no status for ${Math.round(r.age_s)} s` : 'up'),
          r.local ? 'now' : ago(r.age_s)]), 'roles-table')),
    );
  }

  getJson<PipelineHistory>('/api/v1/pipeline')
    .then((h) => {
      for (const s of h.history) push(Date.parse(s.t) / 1000, s.accepted_per_s, s.rejected_per_s);
      plot.setData([xs, acc, rej]);
      if (!live.last) render(h.now);
    })
    .catch((e) => console.warn('pipeline:', String(e)));
  const off = live.onSnapshot((s) => render(s.pipeline));
  return () => {
    off();
    stopResize();
    plot.destroy();
  };
}
