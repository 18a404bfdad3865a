// Overview: every sensor with its latest values, last seen, reading rate and health, and the
// map of buoys with their recent tracks. Updated in place from the live snapshots.
import { query, type LiveSensor, type LiveSnapshot } from '../api';
import { live } from '../live';
import { createMap } from '../map';
import { ago, el, num } from '../format';

const MAX_FIELD_COLUMNS = 7;

export function mount(root: HTMLElement): () => void {
  const summary = el('div', { class: 'summary', id: 'overview-summary' }, 'Waiting for the first snapshot…');
  const mapEl = el('div', { class: 'map', id: 'map' });
  const table = el('table', { class: 'grid sensors', id: 'sensor-table' });
  const empty = el('p', { class: 'muted', hidden: '' }, 'No sensor has sent readings yet.');
  root.append(
    el('section', { class: 'overview' },
      el('div', { class: 'panel map-panel' }, mapEl),
      el('div', { class: 'panel' }, summary, el('div', { class: 'table-wrap' }, table), empty),
    ),
  );

  const open = (id: number) => (location.hash = `#/sensor/${id}`);
  const map = createMap(mapEl, open);

  // The recent tracks: the last hour's positions, one a minute.
  query(
    `SELECT sensor_id, time_bucket('1m', ts) AS t, last(lat) AS lat, last(lon) AS lon FROM readings
     WHERE ts > now() - INTERVAL '1 hour' AND lat IS NOT NULL GROUP BY sensor_id, t ORDER BY t`,
  )
    .then((r) => {
      const tracks = new Map<number, [number, number][]>();
      for (const [id, , lat, lon] of r.rows) {
        if (typeof id !== 'number' || typeof lat !== 'number' || typeof lon !== 'number') continue;
        let t = tracks.get(id);
        if (!t) tracks.set(id, (t = []));
        t.push([lat, lon]);
      }
      map.setTracks(tracks);
    })
    .catch((e) => console.warn('tracks:', String(e)));

  let fields: string[] = [];
  const rows = new Map<number, HTMLTableRowElement>();

  function header(): void {
    const tr = el('tr', {},
      el('th', {}, 'Sensor'), el('th', {}, 'Health'), el('th', {}, 'Last seen'),
      el('th', { class: 'num' }, 'Rate /s'), el('th', { class: 'num' }, 'Readings'));
    for (const f of fields) tr.append(el('th', { class: f === 'status' ? '' : 'num' }, f));
    table.replaceChildren(el('thead', {}, tr), el('tbody'));
    rows.clear();
  }

  function chooseFields(sensors: LiveSensor[]): string[] {
    const seen: string[] = [];
    for (const s of sensors) for (const k of Object.keys(s.values)) if (!seen.includes(k)) seen.push(k);
    const numeric = seen.filter((k) => k !== 'status').slice(0, MAX_FIELD_COLUMNS);
    return seen.includes('status') ? [...numeric, 'status'] : numeric;
  }

  function healthText(s: LiveSensor): string {
    switch (s.health) {
      case 'stale':
        return 'stale';
      case 'fault':
        return `fault: ${s.status ?? '?'}`;
      case 'rejects':
        return `${s.rejects} rejected`;
      default:
        return 'ok';
    }
  }

  function render(snap: LiveSnapshot): void {
    const sensors = snap.sensors;
    empty.hidden = sensors.length > 0;
    const want = chooseFields(sensors);
    if (want.join() !== fields.join() || !table.tHead) {
      fields = want;
      header();
    }
    const body = table.tBodies[0];
    const live = new Set<number>();
    for (const s of sensors) {
      live.add(s.sensor_id);
      let tr = rows.get(s.sensor_id);
      if (!tr) {
        tr = el('tr', { 'data-sensor': String(s.sensor_id), class: 'clickable' });
        const id = s.sensor_id;
        tr.addEventListener('click', () => open(id));
        tr.append(el('td', {}, el('a', { href: `#/sensor/${id}` }, String(id))));
        for (let i = 0; i < 4 + fields.length; i++) tr.append(el('td'));
        rows.set(s.sensor_id, tr);
        body.append(tr);
      }
      const cells = tr.cells;
      let badge = cells[1].firstElementChild as HTMLElement | null;
      if (!badge) cells[1].append((badge = el('span')));
      badge.className = `health health-${s.health}`;
      badge.textContent = healthText(s);
      cells[1].title = [
        s.stale ? `no reading for ${ago(s.age_s)}` : '',
        s.faults_1h ? `${s.faults_1h} faulty readings in the last hour` : '',
        s.rejects ? `${s.rejects} readings rejected (dead-letter file)` : '',
      ].filter(Boolean).join('; ');
      cells[2].textContent = ago(s.age_s);
      cells[2].title = s.last_seen;
      cells[3].textContent = num(s.rate, 2);
      cells[3].className = 'num';
      cells[4].textContent = num(s.readings);
      cells[4].className = 'num';
      fields.forEach((f, i) => {
        const v = s.values[f];
        const td = cells[5 + i];
        td.textContent = v === undefined ? '—' : typeof v === 'number' ? num(v, 2) : v;
        td.className = typeof v === 'string' ? (v === 'ok' ? '' : 'warn') : 'num';
      });
    }
    for (const [id, tr] of rows) {
      if (!live.has(id)) {
        tr.remove();
        rows.delete(id);
      }
    }
    const count = (h: string) => sensors.filter((s) => s.health === h).length;
    summary.textContent =
      `${sensors.length} sensors · ${count('ok')} ok · ${count('fault')} faulty · ${count('stale')} stale · ` +
      `${count('rejects')} with rejects · ingest ${num(snap.pipeline.accepted_per_s, 1)} readings/s`;
    map.update(sensors);
  }

  const off = live.onSnapshot(render);
  return () => {
    off();
    map.destroy();
  };
}
