// The operator console's composition: log in, then the panels (the map, events, cameras and
// their health, the video wall, alerts), the language switch and the periodic refresh.
import * as api from './api.js';
import { t, applyI18n, setLang, currentLang, onLangChange } from './i18n.js';
import { CameraMap } from './map.js';
import { Wall } from './wall.js';
import { AlertsPanel } from './alerts.js';
import { state, $, show, can } from './state.js';
import { selectTab } from './tabs.js';
import { initCameras, filterDown, loadAgencies, loadCameras, showCamera, renderCameraTable } from './cameras.js';
import { loadHealth, renderHealthSummary, renderLegend } from './health.js';
import {
  initEvents, loadServices, fillAgencies, loadEvents, renderEventList, renderEvent, startEvent,
  lookAtBellCamera, refreshEvent, tick,
} from './events.js';

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
  initEvents();
  initCameras();
  $('#health-summary').addEventListener('click', () => {
    filterDown();
    selectTab('cameras');
  });
  setInterval(tick, 1000);
  setInterval(refresh, 5000);
  await Promise.all([loadServices(), loadAgencies()]);
  fillAgencies();
  await loadCameras();
  renderLegend();
  await updateHealth().catch(() => {});
  await loadEvents().catch(() => {});
  await startAlerts().catch(() => {});
  document.body.dataset.ready = '1';
}

// The cameras' health, then the camera list that shows it.
async function updateHealth() {
  if (await loadHealth()) renderCameraTable();
}

async function startAlerts() {
  if (!can('GET /api/v1/alerts')) return;
  show('#alerts-tab', true);
  state.alerts = new AlertsPanel($('#alert-list'), $('#alerts-badge'), $('#alerts-status'),
    can('POST /api/v1/alerts/{id}/ack'), lookAtBellCamera);
  await state.alerts.start();
}

let refreshes = 0;

// Every 5 s: the open event again (expiry, revocations by others), every 15 s the live events
// and the cameras' health; a session that ended (idle, logged out elsewhere, disabled) goes
// back to the login.
async function refresh() {
  try {
    if (++refreshes % 3 === 0) {
      await updateHealth().catch((err) => {
        if (err.status === 401) throw err;
      });
      await loadEvents();
    }
    await refreshEvent();
  } catch (err) {
    if (err.status === 401) location.reload();
    // else keep what is shown
  }
}

// The console's state, for the browser tests (and an operator's devtools): read-only use.
window.cctvhub = state;
start();
