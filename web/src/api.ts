// What the dashboard asks `mare run` (docs/api/openapi.yaml): SQL over the store, the sensor
// list, and the dashboard's own JSON endpoints. The live stream is in live.ts.
import { authFetch } from './auth';

export type ColumnType = 'boolean' | 'integer' | 'double' | 'timestamp' | 'interval' | 'text' | 'null';
export type Cell = number | string | boolean | null;

export interface Column {
  name: string;
  type: ColumnType;
}

export interface QueryResult {
  columns: Column[];
  rows: Cell[][];
  row_count: number;
  elapsed_ms: number;
  stats?: Record<string, number>;
}

export interface SqlErrorBody {
  error: string;
  message?: string;
  line?: number;
  column?: number;
}

export class SqlError extends Error {
  constructor(
    public body: SqlErrorBody,
    public status: number,
  ) {
    super(body.error);
  }
}

export async function query(sql: string): Promise<QueryResult> {
  const res = await authFetch('/api/v1/query', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ q: sql, format: 'json' }),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new SqlError({ error: `HTTP ${res.status}: ${text.slice(0, 200)}` }, res.status);
  }
  if (!res.ok) throw new SqlError(body as SqlErrorBody, res.status);
  return body as QueryResult;
}

// The result as CSV text, straight from the server (format=csv), for downloads.
export async function queryCsv(sql: string): Promise<string> {
  const res = await authFetch('/api/v1/query?format=csv', {
    method: 'POST',
    headers: { 'Content-Type': 'application/sql' },
    body: sql,
  });
  const text = await res.text();
  if (!res.ok) {
    let body: SqlErrorBody = { error: text };
    try {
      body = JSON.parse(text) as SqlErrorBody;
    } catch {
      /* keep the text */
    }
    throw new SqlError(body, res.status);
  }
  return text;
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await authFetch(path, { headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

export interface SensorInfo {
  sensor_id: number;
  first_seen: string;
  last_seen: string;
  readings: number;
  fields: string[];
  position: { lat: number; lon: number; ts: string } | null;
}

export async function sensors(): Promise<SensorInfo[]> {
  const body = await getJson<{ sensors: SensorInfo[] }>('/api/v1/sensors');
  return body.sensors;
}

// One sensor in a live snapshot (GET /api/v1/live/snapshot, the `snapshot` event).
export interface LiveSensor {
  sensor_id: number;
  first_seen: string;
  last_seen: string;
  age_s: number;
  readings: number;
  rate: number;
  values: Record<string, number | string>;
  position: { lat: number; lon: number } | null;
  status: string | null;
  stale: boolean;
  faults_1h: number | null;
  rejects: number;
  health: 'ok' | 'stale' | 'fault' | 'rejects';
}

export interface PipelineHealth {
  time: string;
  uptime_s: number;
  accepted_total: number;
  received_total: number;
  rejected_total: number;
  accepted_per_s: number;
  rejected_per_s: number;
  sources: {
    source: string;
    received: number;
    accepted: number;
    rejected: number;
    accepted_per_s: number;
    rejected_per_s: number;
    connections: number | null;
  }[];
  rejects_by_reason: Record<string, number>;
  udp_kernel_drops: number;
  dead_letter: { written: number; dropped: number; unattributed: number };
  log: {
    fsync: string;
    retention: string;
    retention_bytes: number;
    topics: { topic: string; bytes: number; records_appended: number; end_offset: number; segments_deleted: number }[];
  };
  lags: { consumer: string; records: number }[];
  rollup: {
    enabled: boolean;
    watermark: string | null;
    lateness: string;
    open_windows: number;
    emitted: number;
    dropped_late: number;
    readings: number;
  };
  store: {
    enabled: boolean;
    rows: number;
    memtable_rows: number;
    segments: number;
    bytes: number;
    retention: string;
  };
  sinks: { sink: string; enabled: boolean; connected: boolean; rows_written: number; errors: number; lag_records: number }[];
  queries: { ok: number; invalid: number; failed: number };
  // Every process of the pipeline: this one (local), and on Kafka the other roles by their newest status.
  roles: {
    role: string;
    instance: string;
    local: boolean;
    host?: string;
    pid?: number;
    time: string;
    age_s: number;
    stale: boolean;
  }[];
}

export interface LiveSnapshot {
  time: string;
  sensors: LiveSensor[];
  pipeline: PipelineHealth;
}

export interface PipelineHistory {
  now: PipelineHealth;
  history: { t: string; accepted_per_s: number; rejected_per_s: number }[];
}

// A timestamp literal for SQL from epoch milliseconds: TIMESTAMP '2024-01-21T10:00:00.123456Z'.
export function sqlTime(ms: number): string {
  return `TIMESTAMP '${new Date(ms).toISOString()}'`;
}

// A double-quoted SQL name (fields may be any text).
export function sqlName(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) && !RESERVED.has(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

const RESERVED = new Set(
  'and as asc between by desc distinct false from group having in interval is latest limit not null offset on or order partition select timestamp true where'.split(
    ' ',
  ),
);

// The fields the store keeps as numbers, from the table's column types.
export async function numericColumns(): Promise<Set<string>> {
  const r = await query('SELECT * FROM readings LIMIT 0');
  return new Set(r.columns.filter((c) => c.type === 'double' || c.type === 'integer').map((c) => c.name));
}

// The latest forecast of a sensor's first forecast field (GET /api/v1/forecast,
// docs/formats/forecasts.md): each target hour's mean and 80 % interval (null while the series
// lacks the history for one). null while the sensor has none.
export interface ForecastHour {
  target_hour: string;
  value: number | null;
  lower: number | null;
  upper: number | null;
}

export interface Forecast {
  sensor_id: number;
  field: string;
  issued_at: string;
  day_ahead: boolean;
  model: string;
  hours: ForecastHour[];
}

export async function forecast(sensorId: number): Promise<Forecast | null> {
  const res = await authFetch(`/api/v1/forecast?sensor_id=${sensorId}`, { headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`/api/v1/forecast: HTTP ${res.status}`);
  // While the sensor has none: {"sensor_id":7,"field":"temperature","day_ahead":false,"forecast":null}.
  const body = (await res.json()) as Forecast | { forecast: null };
  return 'hours' in body ? body : null;
}

// Each model's recent skill on a sensor's first forecast field (GET /api/v1/forecast/skill):
// MAE over the last 30 days' day-ahead forecasts, skill against persistence (1 − MAE / its MAE)
// and weight in the ensemble that is issued. null while the sensor has no forecast series.
export interface ModelSkill {
  model: string;
  hours: number;
  mae: number | null;
  skill: number | null;
  weight: number | null;
}

export interface ForecastSkill {
  sensor_id: number;
  field: string;
  as_of: string;
  days: number;
  in_use: string;
  leading: string;
  models: ModelSkill[];
}

export async function forecastSkill(sensorId: number): Promise<ForecastSkill | null> {
  const res = await authFetch(`/api/v1/forecast/skill?sensor_id=${sensorId}`, { headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`/api/v1/forecast/skill: HTTP ${res.status}`);
  // While the sensor has no series: {"sensor_id":7,"field":"temperature","models":null}.
  const body = (await res.json()) as ForecastSkill | { models: null };
  return body.models ? (body as ForecastSkill) : null;
}
