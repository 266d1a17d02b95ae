// The cameras: the registry's agencies and cameras (onto the map as they load), one camera's
// details (its health from health.js) and the camera list with its text and health filters.
import * as api from './api.js';
import { t } from './i18n.js';
import { el } from './dom.js';
import { state, $, show, can } from './state.js';
import { DOWN, healthText, localTime, statusText } from './format.js';
import { loadCameraHealth } from './health.js';

// The list's filters: typing, a health state, and "more" rows.
export function initCameras() {
  $('#camera-filter').addEventListener('input', () => {
    state.cameraRows = 200;
    renderCameraTable();
  });
  $('#camera-health-filter').addEventListener('change', () => {
    state.healthFilter = $('#camera-health-filter').value;
    state.cameraRows = 200;
    renderCameraTable();
  });
  $('#camera-more').addEventListener('click', () => {
    state.cameraRows += 500;
    renderCameraTable();
  });
}

// The list filtered to the cameras down (offline or auth-failed): the health summary's click.
export function filterDown() {
  state.healthFilter = 'down';
  $('#camera-health-filter').value = 'down';
  state.cameraRows = 200;
}

export async function loadAgencies() {
  const items = await api.listAll('/api/v1/agencies').catch(() => []);
  for (const a of items) state.agencies.set(a.id, a);
}

export async function loadCameras() {
  $('#map-hint').textContent = t('map.loading', 0);
  state.cameras = await api.listAll('/api/v1/cameras', (items, n) => {
    state.map.add(items);
    $('#map-hint').textContent = t('map.loading', n);
  });
  $('#map-hint').textContent = `${t('map.hint')} ${t('map.loaded', state.cameras.length)}` +
    (state.config.tile_url ? '' : ` — ${t('map.no_tiles')}`);
  state.map.fit();
}

export function showCamera(cam) {
  const box = $('#camera-details');
  state.healthShown = null;
  box.textContent = '';
  const ag = state.agencies.get(cam.agency_id);
  const row = (k, v) => (v == null || v === '' ? null : el('tr', {}, el('th', { text: t(k) }), el('td', { text: String(v) })));
  box.append(
    el('h2', { text: `#${cam.id} ${cam.name}` }),
    el('table', { class: 'kv' },
      row('cam.status', statusText(cam.status)),
      row('cam.agency', ag ? ag.name : cam.agency_id),
      row('cam.kind', cam.kind),
      row('cam.purpose', cam.purpose),
      row('cam.address', cam.road_address || cam.lot_address),
      row('cam.heading', cam.heading_deg != null ? `${cam.heading_deg}°` : null),
      row('cam.fov', cam.fov_deg != null ? `${cam.fov_deg}°` : null),
      row('cam.rtsp', cam.rtsp_configured ? t('yes') : t('no'))),
    el('div', { id: 'camera-health' }));
  box.dataset.camera = cam.id;
  show('#camera-details', true);
  if (cam.rtsp_configured && can('GET /api/v1/cameras/{id}/health')) {
    state.healthShown = cam.id;
    loadCameraHealth(cam.id);
  }
}

export function renderCameraTable() {
  const tbody = $('#camera-table tbody');
  if (!tbody || $('#cameras-view').hidden) return;
  const q = $('#camera-filter').value.trim().toLowerCase();
  const hf = state.healthFilter;
  const healthOf = (c) => {
    const h = state.health.get(c.id);
    return h ? h.state : null;
  };
  const rows = state.cameras.filter((c) => {
    if (q && !`${c.name} ${c.road_address || ''} ${c.lot_address || ''} ${c.purpose || ''}`.toLowerCase().includes(q)) return false;
    if (!hf) return true;
    const st = healthOf(c);
    return hf === 'down' ? DOWN.has(st) : st === hf;
  });
  tbody.textContent = '';
  const frag = document.createDocumentFragment();
  for (const c of rows.slice(0, state.cameraRows)) {
    const ag = state.agencies.get(c.agency_id);
    const h = state.health.get(c.id);
    const healthCell = h
      ? el('td', { class: `health h-${h.state}`, title: h.reason || '' },
        el('span', { class: `hdot h-${h.state}` }), healthText(h.state),
        h.since && h.state !== 'online' ? el('span', { class: 'muted', text: ` · ${t('health.since_short', localTime(h.since))}` }) : null)
      : el('td', { class: 'health muted', text: '—' });
    frag.append(el('tr', { dataset: { camera: c.id, health: h ? h.state : '' }, class: h && DOWN.has(h.state) ? 'down' : '' },
      el('td', { text: String(c.id) }), el('td', { text: c.name }),
      el('td', {}, el('span', { class: `dot s-${c.status}` }), statusText(c.status)),
      el('td', { text: c.kind || '' }), el('td', { text: c.purpose || '' }),
      el('td', { text: ag ? ag.name : String(c.agency_id) }),
      healthCell));
  }
  tbody.append(frag);
  $('#camera-count').textContent = t('cameras.count', rows.length, Math.min(rows.length, state.cameraRows));
  show('#camera-more', rows.length > state.cameraRows);
}
