// The operator console: log in, the camera map, events (open by clicking the map, extend,
// close, approve, revoke a camera, a live countdown), the video wall and the camera list.
import * as api from './api.js';
import { t, applyI18n, setLang, currentLang, onLangChange } from './i18n.js';
import { CameraMap, HEALTH_STATES } from './map.js';
import { Wall, fmtLeft } from './wall.js';
import { AlertsPanel } from './alerts.js';
import { el } from './dom.js';

const $ = (sel) => document.querySelector(sel);
const state = {
  me: null,
  config: { tile_url: null },
  services: [],
  agencies: new Map(),
  cameras: [],
  map: null,
  wall: null,
  event: null, // the event shown in the side panel
  place: null, // where the next event opens
  cameraRows: 200,
  alerts: null, // the alerts panel (admin, operator, auditor)
  health: new Map(), // camera id -> its record of GET /api/v1/camera-health (watched cameras)
  healthCounts: null, // cameras per health state, null until loaded (or the role may not see)
  healthFilter: '', // the camera list: '' all, 'down' offline or auth-failed, or one state
  healthShown: null, // the camera whose health the details panel shows, and its figures
};
const HEALTH_ROLES = ['admin', 'operator', 'provider', 'auditor'];
const DOWN = new Set(['offline', 'auth-failed']);

function show(id, on) {
  $(id).hidden = !on;
}

function healthText(s) {
  const k = `health.${s}`;
  const v = t(k);
  return v === k ? s : v;
}

// A time of the API as the operator's local date and time.
function localTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(currentLang() === 'ko' ? 'ko-KR' : 'en-GB');
}

// Seconds as "2 d 3 h", "3 h 4 min", "4 min 5 s", "5 s".
function fmtDuration(sec) {
  let s = Math.max(0, Math.round(sec));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d) return `${t('dur.d', d)} ${t('dur.h', h)}`;
  if (h) return `${t('dur.h', h)} ${t('dur.m', m)}`;
  if (m) return `${t('dur.m', m)} ${t('dur.s', s)}`;
  return t('dur.s', s);
}

function since(iso) {
  if (!iso) return '—';
  return `${localTime(iso)} (${t('health.for', fmtDuration((Date.now() - Date.parse(iso)) / 1000))})`;
}

function statusText(s) {
  const k = `status.${s}`;
  const v = t(k);
  return v === k ? s : v;
}

// ---- log in ---------------------------------------------------------------------------------

async function start() {
  applyI18n();
  $('#lang').textContent = currentLang() === 'ko' ? 'EN' : '한국어';
  $('#lang').addEventListener('click', () => {
    setLang(currentLang() === 'ko' ? 'en' : 'ko');
    $('#lang').textContent = currentLang() === 'ko' ? 'EN' : '한국어';
  });
  onLangChange(() => {
    if (state.alerts) state.alerts.render();
    if (state.event) renderEvent();
    renderEventList();
    renderCameraTable();
    renderHealthSummary();
    renderLegend();
    const shown = $('#camera-details').dataset.camera;
    if (shown && !$('#camera-details').hidden) {
      const cam = state.map.cameras.get(Number(shown));
      if (cam) showCamera(cam);
    }
  });
  $('#login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    $('#login-error').textContent = '';
    try {
      await api.login($('#login-user').value, $('#login-password').value);
      $('#login-password').value = '';
      state.me = await api.whoami();
    } catch (err) {
      $('#login-error').textContent = t('login.failed', err.message);
      return;
    }
    await enter();
  });
  $('#logout').addEventListener('click', async () => {
    await api.logout().catch(() => {});
    location.reload();
  });
  state.me = await api.whoami().catch(() => null);
  if (state.me) await enter();
  else show('#login-view', true);
}

async function enter() {
  show('#login-view', false);
  show('#app-view', true);
  show('#tabs', true);
  show('#logout', true);
  $('#whoami').textContent = `${state.me.name} (${state.me.role})`;
  for (const b of document.querySelectorAll('#tabs button')) {
    b.addEventListener('click', () => selectTab(b.dataset.tab));
  }
  state.config = await api.call('GET', '/console/config.json').catch(() => ({ tile_url: null }));
  state.map = new CameraMap($('#map'), state.config.tile_url, showCamera, startEvent);
  state.wall = new Wall($('#wall'));
  for (const b of document.querySelectorAll('[data-layout]')) {
    b.addEventListener('click', () => {
      document.querySelectorAll('[data-layout]').forEach((x) => x.classList.remove('active'));
      b.classList.add('active');
      state.wall.setLayout(Number(b.dataset.layout));
    });
  }
  $('#event-form').addEventListener('submit', submitEvent);
  $('#event-cancel').addEventListener('click', () => show('#event-form', false));
  $('#camera-filter').addEventListener('input', () => {
    state.cameraRows = 200;
    renderCameraTable();
  });
  $('#camera-health-filter').addEventListener('change', () => {
    state.healthFilter = $('#camera-health-filter').value;
    state.cameraRows = 200;
    renderCameraTable();
  });
  $('#health-summary').addEventListener('click', () => {
    state.healthFilter = 'down';
    $('#camera-health-filter').value = 'down';
    state.cameraRows = 200;
    selectTab('cameras');
  });
  $('#camera-more').addEventListener('click', () => {
    state.cameraRows += 500;
    renderCameraTable();
  });
  setInterval(tick, 1000);
  setInterval(refresh, 5000);
  await Promise.all([loadServices(), loadAgencies()]);
  await loadCameras();
  renderLegend();
  await loadHealth().catch(() => {});
  await loadEvents().catch(() => {});
  await startAlerts().catch(() => {});
  document.body.dataset.ready = '1';
}

// ---- alerts ---------------------------------------------------------------------------------

async function startAlerts() {
  if (!['admin', 'operator', 'auditor'].includes(state.me.role)) return;
  show('#alerts-tab', true);
  state.alerts = new AlertsPanel($('#alert-list'), $('#alerts-badge'), $('#alerts-status'),
    ['admin', 'operator'].includes(state.me.role), lookAtBellCamera);
  await state.alerts.start();
}

// A camera of a bell alert: on the wall when the open event grants it, else to the map with an
// event form at the bell (watching needs a grant, as always).
function lookAtBellCamera(alert, cam) {
  const ev = state.event;
  const g = ev && (ev.grants || []).find((x) => x.camera_id === cam.id && x.status === 'active' && x.ws_url);
  if (g) {
    state.wall.play(g);
    selectTab('wall');
    return;
  }
  selectTab('map');
  const known = state.map.cameras.get(cam.id);
  if (known) showCamera(known);
  const d = alert.details || {};
  if (d.located) {
    state.map.map.setView([d.lat, d.lon], 18, { animate: false });
    startEvent(d.lat, d.lon);
    // Prefilled for a bell: the SOS service when the services file has it, the alert as the
    // incident, the bell's agency when it may ask; the operator still decides and submits.
    if ([...$('#event-service').options].some((o) => o.value === 'ansimi-sos')) $('#event-service').value = 'ansimi-sos';
    if ([...$('#event-agency').options].some((o) => Number(o.value) === alert.agency_id)) $('#event-agency').value = String(alert.agency_id);
    $('#event-incident').value = `alert-${alert.id}`;
    $('#event-reason').value = alert.message;
    state.playAfterOpen = cam.id; // once the event opens, this camera goes on the wall
  }
}

function selectTab(name) {
  for (const b of document.querySelectorAll('#tabs button')) {
    b.classList.toggle('active', b.dataset.tab === name);
  }
  show('#map-view', name === 'map');
  show('#wall-view', name === 'wall');
  show('#cameras-view', name === 'cameras');
  show('#alerts-view', name === 'alerts');
  if (name === 'map') state.map.invalidate();
  if (name === 'cameras') renderCameraTable();
}

// ---- data -----------------------------------------------------------------------------------

async function loadServices() {
  const r = await api.call('GET', '/api/v1/services').catch(() => ({ items: [] }));
  state.services = r.items || [];
  const sel = $('#event-service');
  sel.textContent = '';
  for (const s of state.services) sel.append(el('option', { value: s.id, text: `${s.name}` }));
}

async function loadAgencies() {
  const items = await api.listAll('/api/v1/agencies').catch(() => []);
  for (const a of items) state.agencies.set(a.id, a);
  const sel = $('#event-agency');
  sel.textContent = '';
  for (const a of items) {
    if (a.kind === 'provider') continue;
    const o = el('option', { value: a.id, text: a.name });
    if (a.id === state.me.agency_id) o.selected = true;
    sel.append(o);
  }
}

async function loadCameras() {
  $('#map-hint').textContent = t('map.loading', 0);
  state.cameras = await api.listAll('/api/v1/cameras', (items, n) => {
    state.map.add(items);
    $('#map-hint').textContent = t('map.loading', n);
  });
  $('#map-hint').textContent = `${t('map.hint')} ${t('map.loaded', state.cameras.length)}` +
    (state.config.tile_url ? '' : ` — ${t('map.no_tiles')}`);
  state.map.fit();
}

// Every watched camera's health in one paged listing (1000 a page), then the map's markers,
// the list, the summary and the open details follow it.
async function loadHealth() {
  if (!HEALTH_ROLES.includes(state.me.role)) return;
  let counts = null;
  const items = await api.listAll('/api/v1/camera-health', null, (page) => {
    if (!counts && page.counts) counts = page.counts;
  });
  const byId = new Map();
  const states = new Map();
  for (const h of items) {
    byId.set(h.camera_id, h);
    states.set(h.camera_id, h.state);
  }
  if (!counts) {
    counts = {};
    for (const st of HEALTH_STATES) counts[st] = 0;
    for (const h of items) counts[h.state] = (counts[h.state] || 0) + 1;
  }
  const old = state.health;
  state.health = byId;
  state.healthCounts = counts;
  state.map.setHealth(states);
  renderHealthSummary();
  renderCameraTable();
  // The camera in the details panel changed state: show its health again.
  const shown = state.healthShown;
  if (shown) {
    const a = old.get(shown);
    const b = byId.get(shown);
    if (!a || !b || a.state !== b.state || a.since !== b.since) loadCameraHealth(shown);
  }
}

// The header's summary: cameras per state; the down ones (offline, auth-failed) stand out.
function renderHealthSummary() {
  const box = $('#health-summary');
  const c = state.healthCounts;
  if (!c) {
    show('#health-summary', false);
    return;
  }
  box.textContent = '';
  const down = (c.offline || 0) + (c['auth-failed'] || 0);
  box.classList.toggle('has-down', down > 0);
  box.dataset.down = String(down);
  box.title = t('health.summary_title');
  box.append(el('span', { class: 'label', text: t('health.summary') }));
  for (const st of HEALTH_STATES) {
    const n = c[st] || 0;
    if (n === 0 && !DOWN.has(st)) continue;
    box.append(el('span', { class: `count h-${st}`, dataset: { state: st, n: String(n) }, title: healthText(st) },
      el('span', { class: `hdot h-${st}` }), String(n)));
  }
  show('#health-summary', true);
}

// The map's legend: the health colors, and the registry status of an unwatched camera.
function renderLegend() {
  if (!state.map) return;
  const items = HEALTH_STATES.map((st) => ({ cls: `hdot h-${st}`, text: healthText(st) }));
  items.push({ cls: 'hdot h-none', text: t('health.unwatched') });
  state.map.setLegend(t('health.legend'), items);
}

let liveEvents = [];

async function loadEvents() {
  if (!['admin', 'operator', 'agency', 'auditor'].includes(state.me.role)) return;
  const page = await api.call('GET', '/api/v1/events?status=active&limit=100');
  const pending = await api.call('GET', '/api/v1/events?status=pending&limit=100');
  liveEvents = [...(pending ? pending.items : []), ...(page ? page.items : [])];
  renderEventList();
}

function renderEventList() {
  const ul = $('#event-list');
  ul.textContent = '';
  if (liveEvents.length === 0) ul.append(el('li', { class: 'muted', text: t('events.none') }));
  for (const ev of liveEvents) {
    ul.append(el('li', {},
      el('a', { href: '#', dataset: { event: ev.id }, onclick: (e) => { e.preventDefault(); openEvent(ev.id); } },
        `#${ev.id} ${ev.service} ${ev.incident || ''} — ${statusText(ev.status)}`)));
  }
}

// ---- cameras --------------------------------------------------------------------------------

function showCamera(cam) {
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
  if (cam.rtsp_configured && HEALTH_ROLES.includes(state.me.role)) {
    state.healthShown = cam.id;
    loadCameraHealth(cam.id);
  }
}

// The details panel's health: state, since, reason, last probe, live figures, the latest
// transitions and the outages of the last 30 days.
async function loadCameraHealth(id) {
  let h;
  let out;
  try {
    [h, out] = await Promise.all([
      api.call('GET', `/api/v1/cameras/${id}/health`),
      api.call('GET', `/api/v1/cameras/${id}/outages`).catch(() => null),
    ]);
  } catch (err) {
    if (state.healthShown !== id) return;
    const box = $('#camera-health');
    box.textContent = '';
    box.append(el('p', { class: 'error', text: t('error', err.message) }));
    return;
  }
  if (state.healthShown !== id || !$('#camera-health')) return; // another camera by now
  renderCameraHealth(h, out);
}

function renderCameraHealth(h, out) {
  const box = $('#camera-health');
  box.textContent = '';
  box.dataset.state = h.state;
  box.className = `health-box h-${h.state}`;
  const row = (k, v, attrs = {}) => (v == null || v === '' ? null : el('tr', {}, el('th', { text: t(k) }), el('td', { ...attrs, text: String(v) })));
  let probe = null;
  if (h.last_probe) {
    probe = `${localTime(h.last_probe)} · ${h.last_probe_ok ? t('health.probe_ok') : t('health.probe_failed')}` +
      (h.latency_ms != null ? ` · ${Math.round(h.latency_ms)} ms` : '') + (h.codec ? ` · ${h.codec}` : '');
  }
  let live = null;
  if (h.live && h.live.playing) {
    const l = h.live;
    live = t('health.live_figures', l.fps != null ? Number(l.fps).toFixed(1) : '—',
      l.bitrate_bps != null ? Math.round(l.bitrate_bps / 1000) : '—',
      l.width && l.height ? `${l.width}×${l.height}` : '—') + (l.codec ? ` · ${l.codec}` : '');
  }
  box.append(
    el('h3', { text: t('health.title') }),
    el('table', { class: 'kv' },
      el('tr', {}, el('th', { text: t('health.state') }),
        el('td', { class: `hstate h-${h.state}` }, el('span', { class: `hdot h-${h.state}` }), healthText(h.state))),
      row('health.since', h.since ? since(h.since) : null, { class: 'hsince' }),
      row('health.reason', h.reason, { class: 'hreason' }),
      row('health.last_probe', probe),
      row('health.last_ok', h.last_ok ? localTime(h.last_ok) : null),
      row('health.failures', h.failures ? h.failures : null),
      row('health.live', live)));
  const tr = h.transitions || [];
  box.append(el('h3', { text: t('health.transitions', tr.length) }));
  const ul = el('ul', { class: 'htransitions' });
  for (const x of tr) {
    ul.append(el('li', { dataset: { to: x.to } },
      el('span', { class: 'muted', text: `${localTime(x.at)} ` }),
      el('span', { class: `hdot h-${x.from}` }), healthText(x.from), ' → ',
      el('span', { class: `hdot h-${x.to}` }), healthText(x.to),
      x.reason ? el('div', { class: 'muted', text: x.reason }) : null));
  }
  if (tr.length === 0) ul.append(el('li', { class: 'muted', text: t('events.none') }));
  box.append(ul);
  if (out) {
    const items = out.items || [];
    box.append(el('h3', { text: t('health.outages', items.length, fmtDuration(out.outage_s || 0)) }));
    const ol = el('ul', { class: 'houtages' });
    for (const o of [...items].reverse()) {
      ol.append(el('li', { dataset: { state: o.state, ongoing: o.end ? '0' : '1' } },
        el('span', { class: `hdot h-${o.state}` }),
        `${localTime(o.start)} – ${o.end ? localTime(o.end) : t('health.ongoing')} (${fmtDuration(o.duration_s || 0)})`,
        o.reason ? el('div', { class: 'muted', text: o.reason }) : null));
    }
    if (items.length === 0) ol.append(el('li', { class: 'muted', text: t('events.none') }));
    box.append(ol);
  }
}

function renderCameraTable() {
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

// ---- events ---------------------------------------------------------------------------------

function startEvent(lat, lon) {
  state.playAfterOpen = null;
  state.place = { lat: Number(lat.toFixed(6)), lon: Number(lon.toFixed(6)) };
  $('#event-where').textContent = t('event.where', state.place.lat, state.place.lon);
  $('#event-error').textContent = '';
  show('#event-form', true);
}

async function submitEvent(e) {
  e.preventDefault();
  const body = {
    service: $('#event-service').value,
    location: state.place,
    duration_s: Number($('#event-duration').value) || undefined,
  };
  if ($('#event-incident').value) body.incident = $('#event-incident').value;
  if ($('#event-reason').value) body.reason = $('#event-reason').value;
  const agency = Number($('#event-agency').value);
  if (agency && agency !== state.me.agency_id) body.agency_id = agency;
  else if (agency && state.me.role !== 'agency') body.agency_id = agency;
  try {
    const ev = await api.call('POST', '/api/v1/events', body);
    show('#event-form', false);
    setEvent(ev);
    const want = state.playAfterOpen;
    state.playAfterOpen = null;
    const g = want && (ev.grants || []).find((x) => x.camera_id === want && x.status === 'active' && x.ws_url);
    if (g) {
      state.wall.play(g);
      selectTab('wall');
    }
    loadEvents().catch(() => {});
  } catch (err) {
    const rule = err.body && err.body.error && err.body.error.rule;
    $('#event-error').textContent = t('error', err.message + (rule ? ` (${rule})` : ''));
  }
}

async function openEvent(id) {
  try {
    setEvent(await api.call('GET', `/api/v1/events/${id}`));
  } catch (err) {
    $('#event-panel').textContent = t('error', err.message);
  }
}

// Shows ev; tokens of a grant already known are kept (a GET shows them too, to the agency).
function setEvent(ev) {
  state.eventRaw = JSON.stringify(ev);
  state.event = ev;
  for (const g of ev.grants || []) {
    const cam = state.map.cameras.get(g.camera_id);
    g.camera_name = cam ? cam.name : '';
    state.wall.updateGrant(g);
  }
  state.map.showEvent(ev);
  renderEvent();
}

async function eventAction(verb, body) {
  try {
    const ev = await api.call('POST', `/api/v1/events/${state.event.id}/${verb}`, body || {});
    setEvent(ev);
    loadEvents().catch(() => {});
  } catch (err) {
    $('#event-action-error').textContent = t('error', err.message);
  }
}

async function revokeGrant(g) {
  try {
    await api.call('POST', `/api/v1/grants/${g.id}/revoke`, {});
    await openEvent(state.event.id);
  } catch (err) {
    $('#event-action-error').textContent = t('error', err.message);
  }
}

function renderEvent() {
  const ev = state.event;
  const box = $('#event-panel');
  box.textContent = '';
  if (!ev) {
    show('#event-panel', false);
    renderWallGrants();
    return;
  }
  box.dataset.event = ev.id;
  box.dataset.status = ev.status;
  const svc = state.services.find((s) => s.id === ev.service);
  const live = ev.status === 'active';
  const canApprove = ev.status === 'pending' && ['operator', 'admin'].includes(state.me.role);
  box.append(
    el('h2', { text: t('event.title', ev.id) }),
    el('table', { class: 'kv' },
      el('tr', {}, el('th', { text: t('event.service') }), el('td', { text: svc ? svc.name : ev.service })),
      el('tr', {}, el('th', { text: t('event.status') }), el('td', { class: `st-${ev.status}`, text: statusText(ev.status) })),
      el('tr', {}, el('th', { text: t('event.incident') }), el('td', { text: ev.incident || '—' })),
      el('tr', {}, el('th', { text: t('event.reason') }), el('td', { text: ev.reason || '—' })),
      el('tr', {}, el('th', { text: t('event.basis') }), el('td', { text: (ev.legal_basis && ev.legal_basis.code) || '—' })),
      el('tr', {}, el('th', { text: t('event.expires') }), el('td', { id: 'event-countdown', class: 'countdown' }))),
    el('div', { class: 'row' },
      live ? el('button', { type: 'button', id: 'event-extend', text: t('event.extend'), onclick: () => eventAction('extend') }) : null,
      live || ev.status === 'pending' ? el('button', { type: 'button', id: 'event-close', text: t('event.close'), onclick: () => eventAction('close', { reason: t('event.closed_reason') }) }) : null,
      canApprove ? el('button', { type: 'button', id: 'event-approve', text: t('event.approve'), onclick: () => eventAction('approve') }) : null,
      canApprove ? el('button', { type: 'button', id: 'event-deny', text: t('event.deny'), onclick: () => eventAction('deny') }) : null),
    el('p', { id: 'event-action-error', class: 'error', role: 'alert' }),
    el('h3', { text: t('event.cameras', (ev.grants || []).length) }));
  const ul = el('ul', { id: 'grant-list', class: 'grants' });
  for (const g of ev.grants || []) {
    const r = g.reason || {};
    const li = el('li', { dataset: { grant: g.id, camera: g.camera_id }, class: `st-${g.status}` },
      g.health ? el('span', { class: `hdot h-${g.health}`, title: healthText(g.health) }) : null,
      el('span', { class: 'gname', text: `#${g.camera_id} ${g.camera_name || ''}` }),
      el('span', { class: 'muted', text: ` ${statusText(g.status)} · ${t('grant.why', Math.round(r.distance_m ?? 0), r.visibility ?? '—', r.score != null ? Number(r.score).toFixed(2) : '—')}` }));
    if (g.status === 'active' && g.ws_url) {
      li.draggable = true;
      li.addEventListener('dragstart', (e) => e.dataTransfer.setData('application/x-cctvhub-grant', JSON.stringify(g)));
      li.append(el('button', { type: 'button', class: 'play', text: t('grant.play'), onclick: () => { state.wall.play(g); selectTab('wall'); } }));
    } else if (g.status === 'active') {
      li.append(el('span', { class: 'muted', text: ` (${t('why.no_token')})` }));
    }
    if (g.status === 'active' && ['operator', 'admin', 'provider'].includes(state.me.role)) {
      li.append(el('button', { type: 'button', class: 'revoke', text: t('grant.revoke'), onclick: () => revokeGrant(g) }));
    }
    ul.append(li);
  }
  box.append(ul);
  show('#event-panel', true);
  renderWallGrants();
  tick();
}

// The open event's playable cameras above the wall: drag one onto a tile, or click it.
function renderWallGrants() {
  const bar = $('#wall-grants');
  bar.textContent = '';
  const ev = state.event;
  const playable = ev ? (ev.grants || []).filter((g) => g.status === 'active' && g.ws_url) : [];
  if (playable.length === 0) return;
  bar.append(el('span', { class: 'muted', text: t('event.title', ev.id) }));
  for (const g of playable) {
    const chip = el('button', { type: 'button', class: 'chip', draggable: 'true', dataset: { grant: g.id, camera: g.camera_id },
      text: `#${g.camera_id} ${g.camera_name || ''}`, onclick: () => state.wall.play(g) });
    chip.addEventListener('dragstart', (e) => e.dataTransfer.setData('application/x-cctvhub-grant', JSON.stringify(g)));
    bar.append(chip);
  }
}

function tick() {
  const ev = state.event;
  const c = document.getElementById('event-countdown');
  if (!ev || !c) return;
  if (!ev.expires_at || ev.status !== 'active') {
    c.textContent = ev.status === 'active' ? '—' : statusText(ev.status);
    return;
  }
  const left = Date.parse(ev.expires_at) - Date.now();
  c.textContent = left > 0 ? fmtLeft(left) : t('event.none_left');
  c.classList.toggle('soon', left < 60000);
}

let refreshes = 0;

// Every 5 s: the open event again (expiry, revocations by others), every 15 s the live events
// and the cameras' health; a session that ended (idle, logged out elsewhere, disabled) goes
// back to the login.
async function refresh() {
  try {
    if (++refreshes % 3 === 0) {
      await loadHealth().catch((err) => {
        if (err.status === 401) throw err;
      });
      await loadEvents();
    }
    if (!state.event) return;
    const ev = await api.call('GET', `/api/v1/events/${state.event.id}`);
    if (JSON.stringify(ev) !== state.eventRaw) setEvent(ev);
  } catch (err) {
    if (err.status === 401) location.reload();
    // else keep what is shown
  }
}

// The console's state, for the browser tests (and an operator's devtools): read-only use.
window.cctvhub = state;
start();
