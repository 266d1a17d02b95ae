// Events: the live list, the form that opens one where the map was clicked (or at a bell), the
// open event's panel (extend, close, approve, deny, revoke a camera, a live countdown) and its
// playable cameras above the wall.
import * as api from './api.js';
import { t } from './i18n.js';
import { fmtLeft } from './wall.js';
import { el } from './dom.js';
import { state, $, show, can } from './state.js';
import { healthText, statusText } from './format.js';
import { showCamera } from './cameras.js';
import { selectTab } from './tabs.js';

// The form's buttons.
export function initEvents() {
  $('#event-form').addEventListener('submit', submitEvent);
  $('#event-cancel').addEventListener('click', () => show('#event-form', false));
}

export async function loadServices() {
  const r = await api.call('GET', '/api/v1/services').catch(() => ({ items: [] }));
  state.services = r.items || [];
  const sel = $('#event-service');
  sel.textContent = '';
  for (const s of state.services) sel.append(el('option', { value: s.id, text: `${s.name}` }));
}

// The agencies an event may be opened for (not the providers), the session's own chosen.
export function fillAgencies() {
  const sel = $('#event-agency');
  sel.textContent = '';
  for (const a of state.agencies.values()) {
    if (a.kind === 'provider') continue;
    const o = el('option', { value: a.id, text: a.name });
    if (a.id === state.me.agency_id) o.selected = true;
    sel.append(o);
  }
}

let liveEvents = [];

export async function loadEvents() {
  if (!can('GET /api/v1/events')) return;
  const page = await api.call('GET', '/api/v1/events?status=active&limit=100');
  const pending = await api.call('GET', '/api/v1/events?status=pending&limit=100');
  liveEvents = [...(pending ? pending.items : []), ...(page ? page.items : [])];
  renderEventList();
}

export function renderEventList() {
  const ul = $('#event-list');
  ul.textContent = '';
  if (liveEvents.length === 0) ul.append(el('li', { class: 'muted', text: t('events.none') }));
  for (const ev of liveEvents) {
    ul.append(el('li', {},
      el('a', { href: '#', dataset: { event: ev.id }, onclick: (e) => { e.preventDefault(); openEvent(ev.id); } },
        `#${ev.id} ${ev.service} ${ev.incident || ''} — ${statusText(ev.status)}`)));
  }
}

// A camera of a bell alert: on the wall when the open event grants it, else to the map with an
// event form at the bell (watching needs a grant, as always).
export function lookAtBellCamera(alert, cam) {
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

export function startEvent(lat, lon) {
  state.playAfterOpen = null;
  state.place = { lat: Number(lat.toFixed(6)), lon: Number(lon.toFixed(6)) };
  $('#event-where').textContent = t('event.where', state.place.lat, state.place.lon);
  $('#event-error').textContent = '';
  show('#event-form', true);
}

export async function submitEvent(e) {
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

export function renderEvent() {
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
  const canApprove = ev.status === 'pending' && can('POST /api/v1/events/{id}/approve');
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
    if (g.status === 'active' && can('POST /api/v1/grants/{id}/revoke')) {
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

export function tick() {
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

// The open event again (expiry, revocations by others), redrawn when it changed.
export async function refreshEvent() {
  if (!state.event) return;
  const ev = await api.call('GET', `/api/v1/events/${state.event.id}`);
  if (JSON.stringify(ev) !== state.eventRaw) setEvent(ev);
}
