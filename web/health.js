// Camera health: every watched camera's state in one paged listing (the map's markers, the
// header's summary, the map's legend) and one camera's health in its details panel.
import * as api from './api.js';
import { t } from './i18n.js';
import { HEALTH_STATES } from './map.js';
import { el } from './dom.js';
import { state, $, show, can } from './state.js';
import { DOWN, healthText, localTime, fmtDuration, since } from './format.js';

// The session may read camera health (the roles admin, operator, provider and auditor today).
export function canSeeHealth() {
  return can('GET /api/v1/camera-health');
}

// Every watched camera's health in one paged listing (1000 a page), then the map's markers,
// the summary and the open details follow it; true when read (the caller redraws the camera
// list), false when the session may not see camera health.
export async function loadHealth() {
  if (!canSeeHealth()) return false;
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
  // The camera in the details panel changed state: show its health again.
  const shown = state.healthShown;
  if (shown) {
    const a = old.get(shown);
    const b = byId.get(shown);
    if (!a || !b || a.state !== b.state || a.since !== b.since) loadCameraHealth(shown);
  }
  return true;
}

// The header's summary: cameras per state; the down ones (offline, auth-failed) stand out.
export function renderHealthSummary() {
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
export function renderLegend() {
  if (!state.map) return;
  const items = HEALTH_STATES.map((st) => ({ cls: `hdot h-${st}`, text: healthText(st) }));
  items.push({ cls: 'hdot h-none', text: t('health.unwatched') });
  state.map.setLegend(t('health.legend'), items);
}


// The details panel's health: state, since, reason, last probe, live figures, the latest
// transitions and the outages of the last 30 days.
export async function loadCameraHealth(id) {
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

export function renderCameraHealth(h, out) {
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
