// The operator console: log in, the camera map, events (open by clicking the map, extend,
// close, approve, revoke a camera, a live countdown), the video wall and the camera list.
import * as api from './api.js';
import { t, applyI18n, setLang, currentLang, onLangChange } from './i18n.js';
import { CameraMap } from './map.js';
import { Wall, fmtLeft } from './wall.js';
import { AlertsPanel } from './alerts.js';

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
};

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function show(id, on) {
  $(id).hidden = !on;
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
  $('#camera-more').addEventListener('click', () => {
    state.cameraRows += 500;
    renderCameraTable();
  });
  setInterval(tick, 1000);
  setInterval(refresh, 5000);
  await Promise.all([loadServices(), loadAgencies()]);
  await loadCameras();
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
      row('cam.rtsp', cam.rtsp_configured ? t('yes') : t('no'))));
  box.dataset.camera = cam.id;
  show('#camera-details', true);
}

function renderCameraTable() {
  const tbody = $('#camera-table tbody');
  if (!tbody || $('#cameras-view').hidden) return;
  const q = $('#camera-filter').value.trim().toLowerCase();
  const rows = q
    ? state.cameras.filter((c) => `${c.name} ${c.road_address || ''} ${c.lot_address || ''} ${c.purpose || ''}`.toLowerCase().includes(q))
    : state.cameras;
  tbody.textContent = '';
  const frag = document.createDocumentFragment();
  for (const c of rows.slice(0, state.cameraRows)) {
    const ag = state.agencies.get(c.agency_id);
    frag.append(el('tr', { dataset: { camera: c.id } },
      el('td', { text: String(c.id) }), el('td', { text: c.name }),
      el('td', {}, el('span', { class: `dot s-${c.status}` }), statusText(c.status)),
      el('td', { text: c.kind || '' }), el('td', { text: c.purpose || '' }),
      el('td', { text: ag ? ag.name : String(c.agency_id) }),
      el('td', { class: 'muted', text: c.health ? c.health.state : '—' })));
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

// Every 5 s: the open event again (expiry, revocations by others), every 15 s the live events;
// a session that ended (idle, logged out elsewhere, disabled) goes back to the login.
async function refresh() {
  try {
    if (++refreshes % 3 === 0) await loadEvents();
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
