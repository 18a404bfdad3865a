// Where the basemap's land is relative to a view: whether a view shows any land, and the
// nearest coast to a point, so that the map opens on the buoys with the shore beside them.
import type { FeatureCollection, Position } from 'geojson';

export interface View {
  south: number;
  west: number;
  north: number;
  east: number;
}

// Each polygon ring of the basemap, with its bounding box for a cheap first test.
interface Ring {
  points: Position[];
  view: View;
}

export class Coast {
  private readonly rings: Ring[] = [];

  constructor(land: FeatureCollection) {
    for (const f of land.features) {
      const g = f.geometry;
      const polygons = g.type === 'Polygon' ? [g.coordinates] : g.type === 'MultiPolygon' ? g.coordinates : [];
      for (const polygon of polygons) {
        for (const points of polygon) {
          const view = { south: Infinity, west: Infinity, north: -Infinity, east: -Infinity };
          for (const [lon, lat] of points) {
            view.south = Math.min(view.south, lat);
            view.north = Math.max(view.north, lat);
            view.west = Math.min(view.west, lon);
            view.east = Math.max(view.east, lon);
          }
          this.rings.push({ points, view });
        }
      }
    }
  }

  // Whether any land shows in the view: a shore point inside it, or the view inside land (a
  // station ashore, far from any coast).
  showsLand(v: View): boolean {
    const centre: Position = [(v.west + v.east) / 2, (v.south + v.north) / 2];
    let inside = false;
    for (const r of this.rings) {
      if (!overlaps(r.view, v)) continue;
      for (const [lon, lat] of r.points) if (lat >= v.south && lat <= v.north && lon >= v.west && lon <= v.east) return true;
      // Even-odd over every ring: a hole (a lake) flips it back.
      if (contains(r.points, centre)) inside = !inside;
    }
    return inside;
  }

  // The shore point nearest to `at` ([lon, lat]) within `maxKm`, or null.
  nearest(at: Position, maxKm: number): Position | null {
    const [lon0, lat0] = at;
    const kmPerLat = 111.2;
    const kmPerLon = kmPerLat * Math.cos((lat0 * Math.PI) / 180);
    const reach: View = {
      south: lat0 - maxKm / kmPerLat,
      north: lat0 + maxKm / kmPerLat,
      west: lon0 - maxKm / Math.max(kmPerLon, 1e-6),
      east: lon0 + maxKm / Math.max(kmPerLon, 1e-6),
    };
    let best: Position | null = null;
    let bestKm2 = maxKm * maxKm;
    for (const r of this.rings) {
      if (!overlaps(r.view, reach)) continue;
      for (const p of r.points) {
        const dx = (p[0] - lon0) * kmPerLon;
        const dy = (p[1] - lat0) * kmPerLat;
        const d2 = dx * dx + dy * dy;
        if (d2 < bestKm2) {
          bestKm2 = d2;
          best = p;
        }
      }
    }
    return best;
  }
}

function overlaps(a: View, b: View): boolean {
  return a.south <= b.north && a.north >= b.south && a.west <= b.east && a.east >= b.west;
}

// Ray casting: whether the point lies inside the ring.
function contains(ring: Position[], [x, y]: Position): boolean {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
