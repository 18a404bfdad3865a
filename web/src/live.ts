// The live stream: one EventSource on GET /api/v1/live for the whole page. The server pushes
// a `snapshot` (every sensor's latest values and health, and the pipeline's health) about once
// a second, and, when a view follows one sensor, its new readings as `readings` events.
import type { Column, Cell, LiveSnapshot } from './api';
import { authFetch, streamUrl } from './auth';

export interface LiveReadings {
  sensor_id: number;
  columns: Column[];
  rows: Cell[][];
}

type SnapshotListener = (s: LiveSnapshot) => void;
type ReadingsListener = (r: LiveReadings) => void;

class Live {
  private source: EventSource | null = null;
  private sensor: number | null = null;
  private since: string | null = null;
  private snapshotListeners = new Set<SnapshotListener>();
  private readingsListeners = new Set<ReadingsListener>();
  private retryTimer: number | undefined;
  last: LiveSnapshot | null = null;

  start(): void {
    this.connect();
  }

  // Follows one sensor's new readings after `since` (ISO time; null: from now on), or none.
  follow(sensor: number | null, since: string | null = null): void {
    if (sensor === this.sensor && since === this.since) return;
    this.sensor = sensor;
    this.since = since;
    this.connect();
  }

  onSnapshot(f: SnapshotListener): () => void {
    this.snapshotListeners.add(f);
    if (this.last) f(this.last);
    return () => this.snapshotListeners.delete(f);
  }

  onReadings(f: ReadingsListener): () => void {
    this.readingsListeners.add(f);
    return () => this.readingsListeners.delete(f);
  }

  private connect(): void {
    window.clearTimeout(this.retryTimer);
    this.source?.close();
    const params = new URLSearchParams();
    if (this.sensor !== null) params.set('sensor', String(this.sensor));
    if (this.sensor !== null && this.since) params.set('since', this.since);
    const qs = params.toString();
    const url = '/api/v1/live' + (qs ? '?' + qs : '');
    const source = new EventSource(streamUrl(url));
    this.source = source;
    setStatus('connecting');
    source.onopen = () => setStatus('live');
    source.addEventListener('snapshot', (e) => {
      const snap = JSON.parse((e as MessageEvent).data) as LiveSnapshot;
      this.last = snap;
      setStatus('live');
      for (const f of this.snapshotListeners) f(snap);
    });
    source.addEventListener('readings', (e) => {
      const r = JSON.parse((e as MessageEvent).data) as LiveReadings;
      if (r.rows.length > 0) {
        // Reconnecting (after a network blip) resumes after the newest reading seen.
        const ts = r.rows[r.rows.length - 1][0];
        if (typeof ts === 'string') this.since = ts;
      }
      for (const f of this.readingsListeners) f(r);
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (too many streams, or no token: EventSource cannot tell which) or the server
        // went away. A 401 is found out with fetch, which asks for a token, then reconnects.
        setStatus('offline');
        void authFetch('/api/v1/live/snapshot').then(
          (res) => {
            if (this.source !== source) return;
            this.retryTimer = window.setTimeout(() => this.connect(), res.ok ? 0 : 3000);
          },
          () => {
            if (this.source === source) this.retryTimer = window.setTimeout(() => this.connect(), 3000);
          },
        );
      } else {
        setStatus('connecting');
      }
    };
  }
}

function setStatus(state: 'connecting' | 'live' | 'offline'): void {
  const el = document.getElementById('live-status');
  if (!el || el.dataset.state === state) return;
  el.dataset.state = state;
  el.textContent = state === 'live' ? 'live' : state === 'offline' ? 'offline, retrying' : 'connecting';
}

export const live = new Live();
