// The video wall: 1, 4, 9 or 16 tiles, each playing one grant's ws_url through MediaSource.
// The hub sends a text message {"type":"init","codec",...}, then the init segment, then one
// binary message (moof + mdat) per frame; text and init come again before every keyframe.
// A grant's end closes the socket with 1008 "grant_ended": the tile goes dark and says why.
import { t, onLangChange } from './i18n.js';

const KEEP_SECONDS = 20; // buffered video kept behind the play position
const MAX_LAG_SECONDS = 1.5; // further behind the live edge than this: jump to it

function fmtLeft(ms) {
  if (ms <= 0) return '0:00';
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}
export { fmtLeft };

// Why a socket closed, in words, from its close code and reason.
function closeWhy(ev) {
  if (ev.code === 1008 && ev.reason === 'grant_ended') return t('why.grant_ended');
  if (ev.code === 1013) return t('why.slow');
  return t('why.lost', ev.reason ? `${ev.code} ${ev.reason}` : ev.code);
}

class Player {
  // Plays ws_url into video; onState(kind, text) reports 'playing', 'dark' with the reason.
  constructor(video, wsUrl, onState) {
    this.video = video;
    this.onState = onState;
    this.queue = [];
    this.sb = null;
    this.codec = null;
    this.serial = null;
    this.expectInit = false;
    this.skipInit = false;
    this.closed = false;
    this.started = false;
    if (!window.MediaSource) {
      this.fail(t('why.no_mse'));
      return;
    }
    this.ms = new MediaSource();
    this.objectUrl = URL.createObjectURL(this.ms);
    video.src = this.objectUrl;
    this.ms.addEventListener('sourceopen', () => this.pump(), { once: true });
    this.ws = new WebSocket(wsUrl);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onmessage = (m) => this.message(m);
    this.ws.onclose = (ev) => {
      if (!this.closed) this.fail(closeWhy(ev), ev);
    };
  }

  message(m) {
    if (typeof m.data === 'string') {
      let init;
      try {
        init = JSON.parse(m.data);
      } catch {
        return;
      }
      if (init.type !== 'init') return;
      const mime = `video/mp4; codecs="${init.codec}"`;
      if (!MediaSource.isTypeSupported(mime)) {
        this.fail(t('why.codec', init.codec));
        return;
      }
      this.expectInit = true;
      // The same init segment comes before every keyframe: appended only when it changed.
      this.skipInit = this.sb !== null && init.serial === this.serial && init.codec === this.codec;
      if (this.sb && init.codec !== this.codec && this.sb.changeType) this.sb.changeType(mime);
      this.mime = mime;
      this.codec = init.codec;
      this.serial = init.serial;
      this.onState('codec', `${init.codec} ${init.width}×${init.height}`);
      return;
    }
    if (this.expectInit) {
      this.expectInit = false;
      if (this.skipInit) return;
    }
    this.queue.push(m.data);
    this.pump();
  }

  pump() {
    if (this.closed || !this.ms || this.ms.readyState !== 'open' || !this.mime) return;
    if (!this.sb) {
      try {
        this.sb = this.ms.addSourceBuffer(this.mime);
      } catch (e) {
        this.fail(t('why.codec', this.codec));
        return;
      }
      this.sb.mode = 'segments';
      this.sb.addEventListener('updateend', () => this.afterAppend());
    }
    if (this.sb.updating || this.queue.length === 0) return;
    try {
      this.sb.appendBuffer(this.queue.shift());
    } catch (e) {
      if (e.name === 'QuotaExceededError') this.trim(true);
      else this.fail(t('error', e.message));
    }
  }

  afterAppend() {
    const v = this.video;
    const b = this.sb.buffered;
    if (b.length > 0) {
      const end = b.end(b.length - 1);
      if (!this.started || end - v.currentTime > MAX_LAG_SECONDS + 1 || v.currentTime < b.start(0)) {
        // Start (or catch up) near the live edge.
        v.currentTime = Math.max(b.start(b.length - 1), end - 0.3);
        if (!this.started) {
          this.started = true;
          this.onState('playing');
        }
        v.play().catch(() => {});
      }
    }
    if (!this.trim(false)) this.pump();
  }

  // Drops what lies well behind the play position; true when a removal was started.
  trim(force) {
    const b = this.sb.buffered;
    if (this.sb.updating || b.length === 0) return false;
    const upTo = this.video.currentTime - (force ? 2 : KEEP_SECONDS);
    if (upTo > b.start(0) + 1) {
      this.sb.remove(b.start(0), upTo);
      return true;
    }
    return false;
  }

  fail(why, ev) {
    if (this.closed) return;
    this.stop();
    this.onState('dark', why, ev);
  }

  stop() {
    this.closed = true;
    if (this.ws && this.ws.readyState <= 1) this.ws.close(1000);
    this.queue = [];
    try {
      if (this.ms && this.ms.readyState === 'open') this.ms.endOfStream();
    } catch {
      // already ended
    }
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
  }
}

export class Wall {
  constructor(el) {
    this.el = el;
    this.tiles = [];
    this.setLayout(4);
    setInterval(() => this.tick(), 1000);
    onLangChange(() => this.tiles.forEach((tile) => this.label(tile)));
  }

  setLayout(n) {
    const keep = this.tiles.slice(0, n);
    for (const tile of this.tiles.slice(n)) this.stopTile(tile);
    this.el.className = `wall n${n}`;
    this.el.textContent = '';
    this.tiles = [];
    for (let i = 0; i < n; i++) {
      const tile = keep[i] || this.makeTile(i);
      this.tiles.push(tile);
      this.el.appendChild(tile.el);
    }
  }

  makeTile(i) {
    const el = document.createElement('div');
    el.className = 'tile empty';
    el.dataset.tile = String(i);
    el.dataset.frames = '0';
    const video = document.createElement('video');
    video.muted = true;
    video.playsInline = true;
    video.autoplay = true;
    const cap = document.createElement('div');
    cap.className = 'caption';
    const name = document.createElement('span');
    name.className = 'name';
    const left = document.createElement('span');
    left.className = 'left';
    const stop = document.createElement('button');
    stop.type = 'button';
    stop.className = 'stop';
    stop.textContent = '×';
    cap.append(name, left, stop);
    const why = document.createElement('div');
    why.className = 'why';
    el.append(video, cap, why);
    const tile = { el, video, name, left, why, grant: null, player: null, frames: 0 };
    stop.addEventListener('click', () => this.stopTile(tile));
    el.addEventListener('dragover', (e) => {
      e.preventDefault();
      el.classList.add('over');
    });
    el.addEventListener('dragleave', () => el.classList.remove('over'));
    el.addEventListener('drop', (e) => {
      e.preventDefault();
      el.classList.remove('over');
      const data = e.dataTransfer.getData('application/x-cctvhub-grant');
      if (data) this.play(JSON.parse(data), tile);
    });
    // Counts decoded frames (the browser test reads data-frames).
    const count = () => {
      tile.frames++;
      el.dataset.frames = String(tile.frames);
      video.requestVideoFrameCallback(count);
    };
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(count);
    this.label(tile);
    return tile;
  }

  label(tile) {
    if (!tile.grant) {
      tile.name.textContent = t('wall.empty');
      tile.left.textContent = '';
      return;
    }
    tile.name.textContent = `#${tile.grant.camera_id} ${tile.grant.camera_name || ''}`;
    this.tickTile(tile);
  }

  // Plays grant (with ws_url, expires_at) on tile, or on the first free tile.
  play(grant, tile) {
    if (!grant.ws_url) return null;
    tile = tile || this.tiles.find((x) => !x.grant) || this.tiles[0];
    this.stopTile(tile);
    tile.grant = grant;
    tile.el.className = 'tile connecting';
    tile.el.dataset.grant = String(grant.id);
    tile.el.dataset.camera = String(grant.camera_id);
    tile.why.textContent = t('wall.connecting');
    this.label(tile);
    tile.player = new Player(tile.video, grant.ws_url, (kind, text) => {
      if (kind === 'playing') {
        tile.el.className = 'tile playing';
        tile.why.textContent = '';
      } else if (kind === 'codec') {
        tile.el.dataset.codec = text;
      } else if (kind === 'dark') {
        tile.el.className = 'tile dark';
        tile.why.textContent = text;
        tile.el.dataset.why = text;
      }
    });
    return tile;
  }

  stopTile(tile) {
    if (tile.player) tile.player.stop();
    tile.player = null;
    tile.grant = null;
    tile.video.removeAttribute('src');
    tile.video.load();
    tile.el.className = 'tile empty';
    tile.why.textContent = '';
    delete tile.el.dataset.grant;
    delete tile.el.dataset.why;
    this.label(tile);
  }

  // A grant's new expiry (an extension) reaches the tiles playing it.
  updateGrant(g) {
    for (const tile of this.tiles) {
      if (tile.grant && tile.grant.id === g.id) {
        tile.grant.expires_at = g.expires_at;
        tile.grant.status = g.status;
      }
    }
  }

  tickTile(tile) {
    if (!tile.grant || !tile.grant.expires_at) {
      tile.left.textContent = '';
      return;
    }
    tile.left.textContent = t('wall.remaining', fmtLeft(Date.parse(tile.grant.expires_at) - Date.now()));
  }

  tick() {
    this.tiles.forEach((tile) => this.tickTile(tile));
  }
}
