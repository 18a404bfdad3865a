// The dashboard's entry: a hash router over five views, and the one live stream they share.
//   #/                  overview: map and every sensor's latest values and health
//   #/sensor/7?range=1h one sensor's time series
//   #/stats             hourly and daily rollups per sensor
//   #/sql?q=...         the SQL console
//   #/pipeline          the pipeline's health
import 'leaflet/dist/leaflet.css';
import './style.css';
import { live } from './live';
import * as overview from './views/overview';
import * as sensor from './views/sensor';
import * as stats from './views/stats';
import * as sql from './views/sql';
import * as pipeline from './views/pipeline';

export type Unmount = () => void;
interface View {
  mount(root: HTMLElement, args: string[]): Unmount;
}

const views: Record<string, View> = { '': overview, sensor, stats, sql, pipeline };
const navOf: Record<string, string> = { '': 'overview', sensor: 'overview', stats: 'stats', sql: 'sql', pipeline: 'pipeline' };

let unmount: Unmount | null = null;

function route(): void {
  const hash = location.hash.replace(/^#\/?/, '');
  const path = hash.split('?')[0];
  const parts = path.split('/').filter((p) => p !== '');
  const name = parts[0] ?? '';
  const view = views[name] ?? overview;
  // Views change their own query parameters with history.replaceState, which fires no
  // hashchange: a hashchange is a link or the address bar, and remounts the view.
  unmount?.();
  unmount = null;
  const root = document.getElementById('view')!;
  root.replaceChildren();
  root.dataset.view = navOf[name] ?? 'overview';
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    a.classList.toggle('active', a.dataset.nav === (navOf[name] ?? 'overview'));
  }
  live.follow(null);
  unmount = view.mount(root, parts.slice(1));
}

window.addEventListener('hashchange', route);
live.start();
route();
