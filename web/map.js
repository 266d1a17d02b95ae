// The camera map: every camera as a circle marker colored by status, or by its health once
// the hub watches it (a stream URL), clustered (smooth with tens of thousands), field-of-view
// wedges when zoomed in, the open event's cameras ringed.
/* global L */

export const STATUS_COLORS = {
  active: '#1a9850',
  inactive: '#7f7f7f',
  maintenance: '#fdae61',
  unlocated: '#d73027',
};
// Health states (GET /api/v1/camera-health): the marker's fill, and for the states that mean
// "dark" a larger marker with a thick dark ring.
export const HEALTH_COLORS = {
  online: '#1a9850',
  degraded: '#f59e0b',
  offline: '#d7191c',
  'auth-failed': '#7b3294',
  unknown: '#9ca3af',
};
export const HEALTH_STATES = ['online', 'degraded', 'offline', 'auth-failed', 'unknown'];
const DOWN = new Set(['offline', 'auth-failed']);

// A marker's look: by health when watched, else by the registry's status.
function markerStyle(cam, health) {
  if (!health) return { fillColor: STATUS_COLORS[cam.status] || '#444', color: '#222', weight: 1, radius: 6 };
  const down = DOWN.has(health);
  return {
    fillColor: HEALTH_COLORS[health] || '#444',
    color: down ? '#111' : '#222',
    weight: down ? 3 : 1,
    radius: down ? 9 : 6,
  };
}

const WEDGE_ZOOM = 17; // wedges from this zoom on
const WEDGE_MAX = 2000; // at most this many drawn at once
const DEFAULT_RANGE_M = 50;

// The points of a wedge: the camera, then an arc of fov_deg around heading_deg at range_m.
function wedge(lat, lon, heading, fov, range) {
  const pts = [[lat, lon]];
  const mPerDegLat = 111320;
  const mPerDegLon = 111320 * Math.cos((lat * Math.PI) / 180);
  const steps = Math.max(4, Math.ceil(fov / 10));
  for (let i = 0; i <= steps; i++) {
    const a = ((heading - fov / 2 + (fov * i) / steps) * Math.PI) / 180;
    pts.push([lat + (Math.cos(a) * range) / mPerDegLat, lon + (Math.sin(a) * range) / mPerDegLon]);
  }
  return pts;
}

export class CameraMap {
  // el: the map's element; tileUrl: a Leaflet template or null (plain background);
  // onCamera(camera) on a marker click; onPlace(lat, lon) on a click elsewhere.
  constructor(el, tileUrl, onCamera, onPlace) {
    this.map = L.map(el, { preferCanvas: true, zoomControl: true, minZoom: 5, maxZoom: 19 }).setView([37.5665, 126.978], 12);
    if (tileUrl) {
      L.tileLayer(tileUrl, { maxZoom: 19 }).addTo(this.map);
    } else {
      el.classList.add('plain');
    }
    this.renderer = L.canvas({ padding: 0.5 });
    this.cluster = L.markerClusterGroup({
      chunkedLoading: true,
      showCoverageOnHover: false,
      maxClusterRadius: 60,
      disableClusteringAtZoom: 18,
      iconCreateFunction: (c) => this.clusterIcon(c),
    });
    this.map.addLayer(this.cluster);
    this.wedges = L.layerGroup().addTo(this.map);
    this.eventLayer = L.layerGroup().addTo(this.map);
    this.cameras = new Map();
    this.markers = new Map(); // camera id -> its marker
    this.health = new Map(); // camera id -> its health state (watched cameras only)
    this.onCamera = onCamera;
    this.map.on('click', (e) => onPlace(e.latlng.lat, e.latlng.lng));
    this.map.on('moveend zoomend', () => this.drawWedges());
  }

  clusterIcon(c) {
    const children = c.getAllChildMarkers();
    let bad = 0;
    let down = 0;
    for (const m of children) {
      if (DOWN.has(m.options.health)) down++;
      if (m.options.status !== 'active' || DOWN.has(m.options.health)) bad++;
    }
    const n = c.getChildCount();
    const cls = bad === 0 ? 'ok' : bad * 4 < n ? 'some' : 'many';
    const size = n < 100 ? 34 : n < 1000 ? 40 : 48;
    return L.divIcon({
      html: `<div><span>${n}</span></div>`,
      className: `marker-cluster cluster-${cls}${down ? ' cluster-down' : ''}`,
      iconSize: L.point(size, size),
    });
  }

  // Adds cameras (records of GET /api/v1/cameras) to the map.
  add(cameras) {
    const markers = [];
    for (const cam of cameras) {
      this.cameras.set(cam.id, cam);
      if (cam.lat == null || cam.lon == null) continue;
      const health = this.health.get(cam.id);
      const m = L.circleMarker([cam.lat, cam.lon], {
        renderer: this.renderer,
        ...markerStyle(cam, health),
        fillOpacity: 0.9,
        status: cam.status,
        health,
        cameraId: cam.id,
      });
      this.markers.set(cam.id, m);
      m.on('click', (e) => {
        L.DomEvent.stopPropagation(e);
        this.onCamera(cam);
      });
      markers.push(m);
    }
    this.cluster.addLayers(markers);
  }

  // Colors the markers by health: states maps camera id -> state for every watched camera (a
  // camera missing from it is drawn by its status again). Only changed markers are touched.
  setHealth(states) {
    const changed = [];
    const ids = new Set([...this.health.keys(), ...states.keys()]);
    this.health = states;
    for (const id of ids) {
      const m = this.markers.get(id);
      const h = states.get(id);
      if (!m || m.options.health === h) continue;
      m.options.health = h;
      const st = markerStyle(this.cameras.get(id), h);
      m.setStyle(st);
      m.setRadius(st.radius);
      changed.push(m);
    }
    if (changed.length) {
      this.cluster.refreshClusters(changed);
      this.drawWedges(); // their color follows the marker's
    }
    return changed.length;
  }

  fit() {
    const b = this.cluster.getBounds();
    if (b.isValid()) this.map.fitBounds(b, { maxZoom: 16 });
  }

  drawWedges() {
    this.wedges.clearLayers();
    if (this.map.getZoom() < WEDGE_ZOOM) return;
    const view = this.map.getBounds().pad(0.2);
    let n = 0;
    for (const cam of this.cameras.values()) {
      if (cam.lat == null || cam.heading_deg == null || cam.fov_deg == null) continue;
      if (!view.contains([cam.lat, cam.lon])) continue;
      if (++n > WEDGE_MAX) break;
      const range = cam.range_m || DEFAULT_RANGE_M;
      L.polygon(wedge(cam.lat, cam.lon, cam.heading_deg, Math.max(cam.fov_deg, 1), range), {
        renderer: this.renderer,
        color: markerStyle(cam, this.health.get(cam.id)).fillColor,
        weight: 1,
        fillOpacity: 0.15,
        interactive: false,
      }).addTo(this.wedges);
    }
  }

  // Shows an event's place and rings its cameras; null clears.
  showEvent(ev) {
    this.eventLayer.clearLayers();
    if (!ev) return;
    if (ev.location) {
      L.circleMarker([ev.location.lat, ev.location.lon], {
        renderer: this.renderer, radius: 9, color: '#c51b7d', weight: 3, fill: false,
        interactive: false,
      }).addTo(this.eventLayer);
    }
    for (const g of ev.grants || []) {
      const cam = this.cameras.get(g.camera_id);
      if (!cam || cam.lat == null) continue;
      L.circleMarker([cam.lat, cam.lon], {
        renderer: this.renderer, radius: 11,
        color: g.status === 'active' ? '#2166ac' : '#999', weight: 3, fill: false,
        interactive: false,
      }).addTo(this.eventLayer);
    }
  }

  // The legend (bottom right): a title and items of {cls, text}, each a colored dot (its
  // color from the stylesheet: no inline style) and its text. Called again on a language change.
  setLegend(title, items) {
    if (!this.legend) {
      this.legend = L.control({ position: 'bottomright' });
      this.legend.onAdd = () => {
        const div = L.DomUtil.create('div', 'map-legend');
        div.id = 'map-legend';
        return div;
      };
      this.legend.addTo(this.map);
    }
    const div = this.legend.getContainer();
    div.textContent = '';
    const h = document.createElement('strong');
    h.textContent = title;
    div.append(h);
    for (const it of items) {
      const row = document.createElement('div');
      const dot = document.createElement('span');
      dot.className = it.cls;
      row.append(dot, it.text);
      div.append(row);
    }
  }

  invalidate() {
    this.map.invalidateSize();
  }
}
