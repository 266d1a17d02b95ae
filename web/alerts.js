// The alerts panel: the open and acknowledged alerts, kept live over the hub's WebSocket
// (/api/v1/alerts/live), an acknowledge button with a note, and, for an emergency bell, the
// cameras that see it, each a button (onCamera decides: play it when a grant allows, else open
// an event at the bell).
import * as api from './api.js';
import { t } from './i18n.js';
import { el } from './dom.js';

function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toLocaleString();
}

export class AlertsPanel {
  // list: the <ul> to fill; badge: the tab's counter; canAck: the role may acknowledge.
  constructor(list, badge, status, canAck, onCamera) {
    this.list = list;
    this.badge = badge;
    this.status = status;
    this.canAck = canAck;
    this.onCamera = onCamera;
    this.alerts = new Map(); // id -> alert, open and acknowledged ones
    this.ws = null;
    this.connected = false;
    this.retry = null;
    this.stopped = false;
  }

  async start() {
    await this.load();
    this.connect();
  }

  async load() {
    for (const state of ['open', 'acknowledged']) {
      const page = await api.call('GET', `/api/v1/alerts?state=${state}&limit=1000`);
      for (const a of page.items) this.alerts.set(a.id, a);
    }
    this.render();
  }

  // The live feed; on a drop it comes back after 5 s and reloads what it missed.
  connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/api/v1/alerts/live`);
    this.ws = ws;
    ws.addEventListener('open', () => {
      this.connected = true;
      this.renderStatus();
    });
    ws.addEventListener('message', (e) => {
      let a = null;
      try {
        a = JSON.parse(e.data);
      } catch {
        return;
      }
      this.update(a);
    });
    ws.addEventListener('close', () => {
      this.connected = false;
      this.renderStatus();
      if (this.stopped) return;
      this.retry = setTimeout(() => {
        this.load().catch(() => {});
        this.connect();
      }, 5000);
    });
  }

  update(a) {
    if (a.state === 'resolved') this.alerts.delete(a.id); // its cause cleared
    else this.alerts.set(a.id, a);
    this.render();
  }

  async ack(a, note) {
    const body = note ? { note } : {};
    const after = await api.call('POST', `/api/v1/alerts/${a.id}/ack`, body);
    this.update(after);
  }

  renderStatus() {
    this.status.textContent = this.connected ? t('alerts.live') : t('alerts.offline');
    this.status.classList.toggle('error', !this.connected);
  }

  render() {
    const open = [...this.alerts.values()].filter((a) => a.state === 'open').length;
    this.badge.textContent = open ? String(open) : '';
    this.badge.hidden = open === 0;
    this.list.textContent = '';
    const items = [...this.alerts.values()].sort((x, y) => y.id - x.id);
    if (items.length === 0) this.list.append(el('li', { class: 'muted', text: t('alerts.none') }));
    for (const a of items) this.list.append(this.item(a));
    this.renderStatus();
  }

  item(a) {
    const li = el('li', { class: `alert sev-${a.severity} st-${a.state}`, dataset: { alert: a.id, kind: a.kind, state: a.state } },
      el('div', { class: 'alert-head' },
        el('span', { class: 'sev', text: t(`alerts.sev.${a.severity}`) }),
        el('strong', { text: t(`alerts.kind.${a.kind}`) }),
        el('span', { class: 'muted', text: ` #${a.id} · ${when(a.raised_at)} · ${t(`alerts.state.${a.state}`)}` })),
      el('div', { class: 'alert-msg', text: a.message }));
    const d = a.details || {};
    if (a.kind === 'bell-pressed') {
      const cams = d.cameras || [];
      const ul = el('ul', { class: 'bell-cameras' });
      if (cams.length === 0) ul.append(el('li', { class: 'muted', text: t('alerts.no_cameras') }));
      for (const c of cams) {
        ul.append(el('li', {}, el('button', {
          type: 'button', class: 'bell-camera', dataset: { camera: c.id },
          text: t('alerts.camera', c.id, Math.round(c.distance_m ?? 0), Math.round(c.bearing_deg ?? 0)),
          onclick: () => this.onCamera(a, c),
        })));
      }
      li.append(el('div', { class: 'muted', text: t('alerts.bell_cameras', cams.length) }), ul);
    }
    if (a.acked_at) {
      li.append(el('div', { class: 'muted acked', text: t('alerts.acked', a.acked_by, when(a.acked_at), a.note || '') }));
    } else if (this.canAck) {
      const note = el('input', { class: 'ack-note', placeholder: t('alerts.note') });
      const err = el('span', { class: 'error' });
      const btn = el('button', { type: 'button', class: 'ack', text: t('alerts.ack') });
      btn.addEventListener('click', async () => {
        btn.disabled = true;
        try {
          await this.ack(a, note.value.trim());
        } catch (e) {
          err.textContent = t('error', e.message);
          btn.disabled = false;
        }
      });
      li.append(el('div', { class: 'row' }, note, btn, err));
    }
    return li;
  }
}
