// The overview's map: Leaflet over an offline basemap (Natural Earth 1:10m countries from the
// world-atlas package, shipped inside mare: no tile server, no internet), one marker per buoy
// at its last position, and its recent track. It opens on the buoys, widened to the nearest
// shore when they are too far out for any land to show.
import L from 'leaflet';
import { feature } from 'topojson-client';
import type { Topology, GeometryCollection } from 'topojson-specification';
import type { FeatureCollection } from 'geojson';
import countriesUrl from 'world-atlas/countries-10m.json?url';
import type { LiveSensor } from './api';
import { Coast, type View } from './coast';

let basemap: Promise<FeatureCollection> | null = null;

// Fetched and converted once per page; the file is a hashed asset, cached by the browser.
function loadBasemap(): Promise<FeatureCollection> {
  basemap ??= fetch(countriesUrl)
    .then((r) => {
      if (!r.ok) throw new Error(`basemap: HTTP ${r.status}`);
      return r.json();
    })
    .then((topo: Topology) => feature(topo, topo.objects.countries as GeometryCollection) as FeatureCollection);
  return basemap;
}

export interface BuoyMap {
  update(sensors: LiveSensor[]): void;
  setTracks(tracks: Map<number, [number, number][]>): void;
  destroy(): void;
}

const TRACK_POINTS = 720;
// How far from the buoys the opening view reaches for a shore; past it, open water it is.
const SHORE_REACH_KM = 60;
// The margin around the buoys (and the shore) in the opening view, as a share of their span.
const FIT_PAD = 0.6;
const FIT_MAX_ZOOM = 12;

export function createMap(container: HTMLElement, onOpen: (sensor: number) => void): BuoyMap {
  const map = L.map(container, {
    preferCanvas: true,
    zoomSnap: 0.25,
    minZoom: 2,
    maxZoom: 14,
    worldCopyJump: false,
    attributionControl: true,
  }).setView([30, 0], 2);
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution('Natural Earth (world-atlas), offline');
  L.control.scale({ imperial: false }).addTo(map);

  const land = L.geoJSON(undefined, {
    interactive: false,
    style: { color: '#9aa39a', weight: 0.7, fillColor: '#eeeee4', fillOpacity: 1 },
  }).addTo(map);
  let destroyed = false;
  // Undefined while the basemap loads, null when it could not be loaded.
  let coast: Coast | null | undefined;
  loadBasemap()
    .then((fc) => {
      if (!destroyed) {
        land.addData(fc);
        land.bringToBack();
        coast = new Coast(fc);
        container.dataset.basemap = 'ready';
        fit();
      }
    })
    .catch((e) => {
      coast = null;
      container.dataset.basemap = 'failed';
      console.warn(String(e));
      fit();
    });

  // The view, for the browser test and anyone reading the page: zoom and south,west,north,east.
  const showView = () => {
    const b = map.getBounds();
    container.dataset.zoom = String(map.getZoom());
    container.dataset.view = [b.getSouth(), b.getWest(), b.getNorth(), b.getEast()].map((x) => x.toFixed(5)).join(',');
  };
  map.on('moveend zoomend', showView);
  showView();

  const tracksLayer = L.layerGroup().addTo(map);
  const markersLayer = L.layerGroup().addTo(map);
  const markers = new Map<number, L.Marker>();
  const tracks = new Map<number, { line: L.Polyline; points: [number, number][] }>();
  let fitted = false;

  // Opens once on the buoys, when they and the basemap are both there: if the view around them
  // would show no land, it reaches to the nearest shore, so that a buoy is seen off its coast.
  function fit(): void {
    if (fitted || markers.size === 0 || coast === undefined) return;
    fitted = true;
    const buoys = L.latLngBounds([...markers.values()].map((m) => m.getLatLng()));
    let bounds = buoys.pad(FIT_PAD);
    if (coast && !coast.showsLand(viewOf(map, bounds))) {
      const c = buoys.getCenter();
      const shore = coast.nearest([c.lng, c.lat], SHORE_REACH_KM);
      if (shore) bounds = L.latLngBounds(buoys.getSouthWest(), buoys.getNorthEast()).extend([shore[1], shore[0]]).pad(FIT_PAD / 2);
    }
    map.fitBounds(bounds, { maxZoom: FIT_MAX_ZOOM, animate: false });
    container.dataset.fitted = 'true';
  }

  function icon(s: LiveSensor): L.DivIcon {
    const label = s.health === 'ok' ? 'ok' : s.health;
    return L.divIcon({
      className: 'buoy-icon',
      iconSize: [28, 28],
      iconAnchor: [14, 14],
      html: `<div class="buoy-marker" data-sensor="${s.sensor_id}" data-health="${s.health}" title="sensor ${s.sensor_id}: ${label}">${s.sensor_id}</div>`,
    });
  }

  function trackOf(id: number): { line: L.Polyline; points: [number, number][] } {
    let t = tracks.get(id);
    if (!t) {
      t = { line: L.polyline([], { color: '#1f6fb2', weight: 2, opacity: 0.55, interactive: false }), points: [] };
      t.line.addTo(tracksLayer);
      tracks.set(id, t);
    }
    return t;
  }

  return {
    update(sensors: LiveSensor[]) {
      const seen = new Set<number>();
      for (const s of sensors) {
        if (!s.position) continue;
        seen.add(s.sensor_id);
        const at: [number, number] = [s.position.lat, s.position.lon];
        let m = markers.get(s.sensor_id);
        if (!m) {
          m = L.marker(at, { icon: icon(s), keyboard: false, riseOnHover: true });
          m.on('click', () => onOpen(s.sensor_id));
          m.addTo(markersLayer);
          markers.set(s.sensor_id, m);
        } else {
          m.setLatLng(at);
          const div = m.getElement()?.querySelector<HTMLElement>('.buoy-marker');
          if (div && div.dataset.health !== s.health) m.setIcon(icon(s));
        }
        const t = trackOf(s.sensor_id);
        const last = t.points[t.points.length - 1];
        if (!last || last[0] !== at[0] || last[1] !== at[1]) {
          t.points.push(at);
          if (t.points.length > TRACK_POINTS) t.points.splice(0, t.points.length - TRACK_POINTS);
          t.line.setLatLngs(t.points);
        }
      }
      for (const [id, m] of markers) {
        if (!seen.has(id)) {
          m.remove();
          markers.delete(id);
        }
      }
      container.dataset.markers = String(markers.size);
      fit();
    },
    setTracks(all: Map<number, [number, number][]>) {
      for (const [id, pts] of all) {
        const t = trackOf(id);
        // Keep what live updates added after the track's query started.
        const tail = t.points.filter((p) => !pts.some((q) => q[0] === p[0] && q[1] === p[1]));
        t.points = [...pts, ...tail].slice(-TRACK_POINTS);
        t.line.setLatLngs(t.points);
      }
    },
    destroy() {
      destroyed = true;
      map.remove();
    },
  };
}

// What the map shows once it fits `bounds`: the whole map at the zoom that fits them.
function viewOf(map: L.Map, bounds: L.LatLngBounds): View {
  const zoom = Math.min(map.getBoundsZoom(bounds, false), FIT_MAX_ZOOM);
  const half = map.getSize().divideBy(2);
  const c = map.project(bounds.getCenter(), zoom);
  const sw = map.unproject(L.point(c.x - half.x, c.y + half.y), zoom);
  const ne = map.unproject(L.point(c.x + half.x, c.y - half.y), zoom);
  return { south: sw.lat, west: sw.lng, north: ne.lat, east: ne.lng };
}
