// The operator console in Debian's headless Chromium, driven by playwright-core: log in, the
// map with every camera, a camera's details, the language toggle, an event opened by clicking
// the map, its cameras and countdown, an H.264 camera decoding on the video wall, an H.265
// camera refused with the reason where the browser cannot play it, an extension, a revoked
// grant's tile going dark with the reason, the event closed, a pending event approved, and an
// emergency bell pressed over MQTT arriving live in the alerts panel with the cameras that see
// it, acknowledged with a note, one of its cameras taken to the map; camera health: a camera
// whose stream URL leads nowhere shown offline on the map (its marker's color and size), in the
// header's summary, in the list (the summary's click filters it to the cameras down) and in
// its details (since when, why, its transitions and its ongoing outage), a camsim camera
// online, and the legend. Run by
// tests/integration/test_console.py (CH_BROWSER_TESTS=1), which starts the hub, camsim and a
// mosquitto broker and passes: CONSOLE_URL, CONSOLE_USER, CONSOLE_PASSWORD, EVENT_LAT,
// EVENT_LON, CAMERA_H264, CAMERA_H265, CAMERA_VEHICLE, CAMERA_DEAD, PENDING_EVENT, CAMERAS_TOTAL, MQTT_PORT,
// MQTT_USER, MQTT_PASSWORD, BELL_TOPIC, ARTIFACTS (screenshots), CHROMIUM.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const env = process.env;
const ART = env.ARTIFACTS || '.';
const problems = []; // page errors and policy violations: none allowed
let step = 'start';

function log(msg) {
  console.log(`browser: ${msg}`);
}

function check(cond, what) {
  if (!cond) throw new Error(`${step}: ${what}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(ART, `${name}.png`) });
}

// Clicks the map at lat/lon (the page's Leaflet map converts to a pixel).
async function clickMapAt(page, lat, lon) {
  const pt = await page.evaluate(([la, lo]) => {
    const m = window.cctvhub.map.map;
    const p = m.latLngToContainerPoint([la, lo]);
    const r = m.getContainer().getBoundingClientRect();
    return { x: r.left + p.x, y: r.top + p.y };
  }, [lat, lon]);
  await page.mouse.click(pt.x, pt.y);
}

async function main() {
  // Over HTTPS the hub's certificate comes from the test's CA, which the browser trusts as an
  // authority through the NSS database in BROWSER_HOME (Chromium reads ~/.pki/nssdb).
  const browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'],
    env: env.BROWSER_HOME ? { ...env, HOME: env.BROWSER_HOME } : env,
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    const text = m.text();
    if (m.type() !== 'error') return;
    // The 401s of "who am I" before logging in and of the wrong password are expected.
    if (/status of 401/.test(text)) return;
    problems.push(`console: ${text}`);
  });
  const lat = Number(env.EVENT_LAT);
  const lon = Number(env.EVENT_LON);
  try {
    step = 'log in';
    await page.goto(env.CONSOLE_URL);
    await page.waitForSelector('#login-form', { state: 'visible', timeout: 15000 });
    await shot(page, '01-login');
    await page.fill('#login-password', 'wrong password');
    await page.fill('#login-user', env.CONSOLE_USER);
    await page.click('#login-submit');
    await page.waitForFunction(() => document.querySelector('#login-error').textContent !== '');
    await page.fill('#login-password', env.CONSOLE_PASSWORD);
    await page.click('#login-submit');
    await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 }).catch((e) => {
      throw new Error(`${e.message}\n${problems.join('\n')}`);
    });
    const who = await page.textContent('#whoami');
    check(who.includes(env.CONSOLE_USER) && who.includes('operator'), `whoami ${who}`);
    log(`logged in as ${who}`);

    step = 'map';
    const n = await page.evaluate(() => window.cctvhub.map.cameras.size);
    check(n === Number(env.CAMERAS_TOTAL), `${n} cameras on the map, wanted ${env.CAMERAS_TOTAL}`);
    const clusters = await page.locator('.marker-cluster').count();
    check(clusters > 0, 'no cluster drawn');
    await shot(page, '02-map');
    log(`${n} cameras on the map, ${clusters} clusters`);

    step = 'language';
    const koTab = await page.textContent('[data-tab="map"]');
    await page.click('#lang');
    const enTab = await page.textContent('[data-tab="map"]');
    check(koTab === '지도' && enTab === 'Map', `tab text ${koTab} -> ${enTab}`);
    await page.click('#lang');
    check((await page.textContent('[data-tab="map"]')) === '지도', 'back to Korean');

    step = 'camera details';
    await page.evaluate(([la, lo]) => window.cctvhub.map.map.setView([la, lo], 18, { animate: false }), [lat, lon]);
    await page.waitForTimeout(500);
    const cam = await page.evaluate((id) => window.cctvhub.map.cameras.get(id), Number(env.CAMERA_H264));
    await clickMapAt(page, cam.lat, cam.lon);
    await page.waitForSelector('#camera-details:not([hidden])', { timeout: 5000 });
    const details = await page.textContent('#camera-details');
    check(details.includes(cam.name), `details: ${details}`);
    const wedges = await page.evaluate(() => window.cctvhub.map.wedges.getLayers().length);
    check(wedges >= 2, `${wedges} field-of-view wedges at zoom 18`);
    log(`camera details shown, ${wedges} wedges`);

    step = 'open an event by clicking the map';
    await clickMapAt(page, lat, lon);
    await page.waitForSelector('#event-form:not([hidden])', { timeout: 5000 });
    await page.selectOption('#event-service', '112-center');
    await page.fill('#event-incident', '112-2026-0415');
    await page.fill('#event-reason', '강도 신고 (browser test)');
    await page.fill('#event-duration', '900');
    await shot(page, '03-event-form');
    await page.click('#event-submit');
    await page.waitForSelector('#event-panel[data-status="active"]', { timeout: 15000 });
    const grants = await page.locator('#grant-list li').count();
    check(grants === 3, `${grants} cameras in the event, wanted 3`);
    for (const id of [env.CAMERA_H264, env.CAMERA_H265]) {
      check(await page.locator(`#grant-list li[data-camera="${id}"] button.play`).count() === 1,
            `camera ${id} has no play button`);
    }
    const cd1 = await page.textContent('#event-countdown');
    check(/^1[45]:\d\d$/.test(cd1), `countdown ${cd1}`);
    await page.waitForTimeout(2100);
    const cd2 = await page.textContent('#event-countdown');
    check(cd2 !== cd1, `the countdown stands still at ${cd1}`);
    await shot(page, '04-event');
    log(`event open with ${grants} cameras, countdown ${cd1} -> ${cd2}`);

    step = 'play H.264 on the wall';
    await page.click(`#grant-list li[data-camera="${env.CAMERA_H264}"] button.play`);
    await page.waitForSelector('#wall-view:not([hidden])');
    const tile = page.locator(`.tile[data-tile="0"][data-camera="${env.CAMERA_H264}"]`);
    await tile.waitFor({ timeout: 5000 });
    await page.waitForSelector(`.tile.playing[data-camera="${env.CAMERA_H264}"]`, { timeout: 20000 });
    const f0 = Number(await tile.getAttribute('data-frames'));
    const t0 = await tile.locator('video').evaluate((v) => v.currentTime);
    await page.waitForTimeout(3000);
    const f1 = Number(await tile.getAttribute('data-frames'));
    const t1 = await tile.locator('video').evaluate((v) => v.currentTime);
    const vq = await tile.locator('video').evaluate((v) => {
      const q = v.getVideoPlaybackQuality();
      return { w: v.videoWidth, h: v.videoHeight, total: q.totalVideoFrames, dropped: q.droppedVideoFrames };
    });
    check(f1 - f0 >= 30, `only ${f1 - f0} frames decoded in 3 s`);
    check(t1 - t0 >= 2, `currentTime went ${t0} -> ${t1}`);
    check(vq.w === 1920 && vq.h === 1080, `video size ${vq.w}x${vq.h}`);
    const left = await tile.locator('.left').textContent();
    check(/\d+:\d\d/.test(left), `tile's time left: ${left}`);
    log(`H.264 plays: ${f1 - f0} frames in 3 s, currentTime ${t0.toFixed(2)} -> ${t1.toFixed(2)}, ` +
        `${vq.w}x${vq.h}, ${vq.total} decoded, ${vq.dropped} dropped; tile says ${left}`);

    step = 'H.265 on the wall';
    await page.click('[data-tab="map"]');
    await page.click(`#grant-list li[data-camera="${env.CAMERA_H265}"] button.play`);
    const hevcOk = await page.evaluate(() => MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L93.B0"'));
    const t265 = page.locator(`.tile[data-camera="${env.CAMERA_H265}"]`);
    if (hevcOk) {
      await page.waitForSelector(`.tile.playing[data-camera="${env.CAMERA_H265}"]`, { timeout: 20000 });
      log('H.265 plays (this browser has hvc1)');
    } else {
      await page.waitForSelector(`.tile.dark[data-camera="${env.CAMERA_H265}"]`, { timeout: 20000 });
      const why = await t265.getAttribute('data-why');
      check(/hvc1|hev1/.test(why), `H.265 tile says ${why}`);
      log(`H.265 refused with the reason: ${why}`);
    }

    step = 'drag a camera onto a tile';
    await page.click('[data-tab="wall"]');
    await page.dragAndDrop(`#wall-grants .chip[data-camera="${env.CAMERA_H264}"]`, '.tile[data-tile="2"]');
    await page.waitForSelector(`.tile.playing[data-tile="2"][data-camera="${env.CAMERA_H264}"]`, { timeout: 20000 });
    const dragged = page.locator('.tile[data-tile="2"]');
    const d0 = Number(await dragged.getAttribute('data-frames'));
    await page.waitForTimeout(2000);
    const d1 = Number(await dragged.getAttribute('data-frames'));
    check(d1 - d0 >= 20, `the dragged tile decoded ${d1 - d0} frames in 2 s`);
    log(`dragged onto tile 2: ${d1 - d0} frames in 2 s`);
    await shot(page, '05-wall-playing');

    step = 'extend';
    await page.click('[data-tab="map"]');
    const exp0 = await page.evaluate(() => window.cctvhub.event.expires_at);
    await page.click('#event-extend');
    await page.waitForFunction((e) => window.cctvhub.event.expires_at !== e, exp0, { timeout: 10000 });
    const exp1 = await page.evaluate(() => window.cctvhub.event.expires_at);
    check(Date.parse(exp1) > Date.parse(exp0), `extended ${exp0} -> ${exp1}`);
    log(`extended: ${exp0} -> ${exp1}`);

    step = 'revoke: the tile goes dark with the reason';
    await page.click(`#grant-list li[data-camera="${env.CAMERA_H264}"] button.revoke`);
    await page.waitForSelector(`#grant-list li.st-revoked[data-camera="${env.CAMERA_H264}"]`, { timeout: 10000 });
    await page.click('[data-tab="wall"]');
    await page.waitForSelector(`.tile.dark[data-camera="${env.CAMERA_H264}"]`, { timeout: 10000 });
    await page.waitForSelector(`.tile.dark[data-tile="2"][data-camera="${env.CAMERA_H264}"]`, { timeout: 10000 });
    const why = await tile.getAttribute('data-why');
    check(why.includes('grant_ended'), `the dark tile says ${why}`);
    const why2 = await page.locator('.tile[data-tile="2"]').getAttribute('data-why');
    check(why2 === why, `the dragged tile says ${why2}`);
    await shot(page, '06-wall-revoked');
    log(`revoked: the tile went dark saying "${why}"`);

    step = 'close';
    await page.click('[data-tab="map"]');
    await page.click('#event-close');
    await page.waitForSelector('#event-panel[data-status="closed"]', { timeout: 10000 });
    await shot(page, '07-event-closed');
    log('event closed');

    step = 'approve a pending event';
    await page.click(`#event-list a[data-event="${env.PENDING_EVENT}"]`);
    await page.waitForSelector(`#event-panel[data-event="${env.PENDING_EVENT}"][data-status="pending"]`, { timeout: 10000 });
    await page.click('#event-approve');
    await page.waitForSelector(`#event-panel[data-event="${env.PENDING_EVENT}"][data-status="active"]`, { timeout: 10000 });
    const approved = await page.locator('#grant-list li').evaluateAll((lis) => lis.map((li) => `${li.dataset.camera}:${li.className}`));
    check(approved.length === 1 && approved[0] === `${env.CAMERA_VEHICLE}:st-active`, `approved grants ${approved}`);
    await shot(page, '08-approved');
    log(`pending event ${env.PENDING_EVENT} approved: ${approved}`);

    step = 'cameras list';
    await page.click('[data-tab="cameras"]');
    const rows = await page.locator('#camera-table tbody tr').count();
    check(rows === Math.min(200, Number(env.CAMERAS_TOTAL)), `${rows} rows`);
    await page.fill('#camera-filter', 'H.264');
    const filtered = await page.locator('#camera-table tbody tr').count();
    check(filtered === 1, `${filtered} rows for H.264`);
    await shot(page, '09-cameras');

    step = 'a bell pressed arrives live in the alerts panel';
    await page.click('[data-tab="alerts"]');
    await page.waitForFunction(() => window.cctvhub.alerts && window.cctvhub.alerts.connected, null, { timeout: 10000 });
    check((await page.locator('#alert-list li.alert').count()) === 0, 'alerts before the bell');
    execFileSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', env.MQTT_PORT, '-u', env.MQTT_USER,
      '-P', env.MQTT_PASSWORD, '-q', '1', '-t', env.BELL_TOPIC, '-m', '{"type":"bell-pressed"}']);
    await page.waitForSelector('#alert-list li[data-kind="bell-pressed"][data-state="open"]', { timeout: 10000 });
    const badge = await page.textContent('#alerts-badge');
    check(badge === '1', `badge ${badge}`);
    const bellCams = await page.locator('#alert-list li[data-kind="bell-pressed"] button.bell-camera')
      .evaluateAll((bs) => bs.map((b) => Number(b.dataset.camera)));
    check(bellCams.includes(Number(env.CAMERA_H264)) && bellCams.includes(Number(env.CAMERA_VEHICLE)),
      `the bell's cameras ${bellCams}`);
    await shot(page, '10-bell-alert');
    log(`bell alert live with cameras ${bellCams}`);

    step = 'acknowledge the bell with a note';
    await page.fill('#alert-list li[data-kind="bell-pressed"] input.ack-note', '순찰차 출동');
    await page.click('#alert-list li[data-kind="bell-pressed"] button.ack');
    await page.waitForSelector('#alert-list li[data-kind="bell-pressed"][data-state="acknowledged"]', { timeout: 10000 });
    const acked = await page.textContent('#alert-list li[data-kind="bell-pressed"] .acked');
    check(acked.includes('순찰차 출동') && acked.includes(env.CONSOLE_USER), `acked text ${acked}`);
    check(await page.isHidden('#alerts-badge'), 'the badge still counts an acknowledged alert');

    step = "a bell's camera without a grant opens an event form at the bell";
    await page.click(`#alert-list li[data-kind="bell-pressed"] button.bell-camera[data-camera="${env.CAMERA_H264}"]`);
    await page.waitForSelector('#event-form', { state: 'visible', timeout: 5000 });
    check(await page.isVisible('#map-view'), 'not on the map');
    const where = await page.textContent('#event-where');
    check(where.includes(String(lat)), `the form's place ${where}`);
    const incident = await page.inputValue('#event-incident');
    check(/^alert-\d+$/.test(incident), `the form's incident ${incident}`);
    const shown = await page.getAttribute('#camera-details', 'data-camera');
    check(shown === env.CAMERA_H264, `camera shown ${shown}`);
    await shot(page, '11-bell-camera');
    log(`bell camera ${env.CAMERA_H264}: event form at ${where}`);

    step = 'camera health: offline on the map';
    const dead = Number(env.CAMERA_DEAD);
    const online = Number(env.CAMERA_VEHICLE);
    // The console reads every watched camera's health every 15 s in one paged listing.
    await page.waitForFunction(([d, o]) => {
      const h = window.cctvhub.health;
      return h.get(d) && h.get(d).state === 'offline' && h.get(o) && h.get(o).state === 'online';
    }, [dead, online], { timeout: 45000 }).catch(async () => {
      const seen = await page.evaluate(() => [...window.cctvhub.health.values()].map((h) => `${h.camera_id}:${h.state}`));
      throw new Error(`health seen by the console: ${seen}`);
    });
    const marks = await page.evaluate(([d, o]) => {
      const m = window.cctvhub.map.markers;
      const f = (id) => ({ health: m.get(id).options.health, fill: m.get(id).options.fillColor, r: m.get(id).getRadius() });
      return { dead: f(d), online: f(o) };
    }, [dead, online]);
    check(marks.dead.health === 'offline' && marks.dead.fill === '#d7191c' && marks.dead.r > marks.online.r,
      `the offline marker ${JSON.stringify(marks.dead)}`);
    check(marks.online.health === 'online' && marks.online.fill === '#1a9850', `the online marker ${JSON.stringify(marks.online)}`);
    const legend = await page.textContent('#map-legend');
    check(legend.includes('연결 끊김') && legend.includes('인증 실패') && legend.includes('정상'), `legend ${legend}`);
    const sum = await page.evaluate(() => {
      const b = document.querySelector('#health-summary');
      const n = (st) => Number(b.querySelector(`.count[data-state="${st}"]`)?.dataset.n);
      return { hidden: b.hidden, down: b.dataset.down, cls: b.className, offline: n('offline'), online: n('online') };
    });
    check(!sum.hidden && sum.down === '1' && sum.offline === 1 && sum.online >= 1 && sum.cls.includes('has-down'),
      `the summary ${JSON.stringify(sum)}`);
    log(`health: camera ${dead} offline (${marks.dead.fill}, r ${marks.dead.r}), ${online} online; summary ${JSON.stringify(sum)}`);

    step = 'camera health: the details of the offline camera';
    const dc = await page.evaluate((id) => window.cctvhub.map.cameras.get(id), dead);
    await page.click('#event-cancel');
    await page.evaluate(([la, lo]) => window.cctvhub.map.map.setView([la, lo], 18, { animate: false }), [dc.lat, dc.lon]);
    await page.waitForTimeout(500);
    await shot(page, '12-health-map');
    await clickMapAt(page, dc.lat, dc.lon);
    await page.waitForSelector(`#camera-details[data-camera="${dead}"] #camera-health[data-state="offline"]`, { timeout: 10000 });
    const hd = await page.evaluate(() => {
      const b = document.querySelector('#camera-health');
      return {
        state: b.querySelector('.hstate').textContent,
        since: b.querySelector('.hsince')?.textContent || '',
        reason: b.querySelector('.hreason')?.textContent || '',
        toOffline: b.querySelectorAll('ul.htransitions li[data-to="offline"]').length,
        ongoing: b.querySelectorAll('ul.houtages li[data-ongoing="1"][data-state="offline"]').length,
      };
    });
    check(hd.state.includes('연결 끊김'), `details state ${hd.state}`);
    check(/\d/.test(hd.since) && hd.since.includes('째'), `details since ${hd.since}`);
    check(/connect|refused|probe/i.test(hd.reason), `details reason ${hd.reason}`);
    check(hd.toOffline === 1 && hd.ongoing === 1, `details transitions/outages ${JSON.stringify(hd)}`);
    await shot(page, '13-health-details');
    log(`health details: ${hd.state}, since ${hd.since}, reason "${hd.reason}"`);

    step = 'camera health: the summary filters the list to the cameras down';
    await page.click('#health-summary');
    await page.waitForSelector('#cameras-view:not([hidden])');
    await page.fill('#camera-filter', '');
    await page.dispatchEvent('#camera-filter', 'input');
    const downRows = await page.locator('#camera-table tbody tr').evaluateAll((trs) => trs.map((tr) => `${tr.dataset.camera}:${tr.dataset.health}:${tr.querySelector('td.health').className}`));
    check(downRows.length === 1 && downRows[0] === `${dead}:offline:health h-offline`, `rows of the cameras down ${downRows}`);
    await shot(page, '14-health-list');
    await page.selectOption('#camera-health-filter', 'online');
    const onRows = await page.locator('#camera-table tbody tr').evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.camera)));
    const wantOn = await page.evaluate(() => [...window.cctvhub.health.values()].filter((h) => h.state === 'online').length);
    check(onRows.length === wantOn && onRows.includes(online) && !onRows.includes(dead), `rows online ${onRows}`);
    await page.selectOption('#camera-health-filter', '');
    const allRows = await page.locator('#camera-table tbody tr').count();
    check(allRows === Math.min(200, Number(env.CAMERAS_TOTAL)), `${allRows} rows with any health`);
    await page.click('#lang');
    const enCell = await page.textContent(`#camera-table tbody tr[data-camera="${dead}"] td.health`);
    await page.click('#lang');
    check(enCell.startsWith('offline'), `English health cell ${enCell}`);
    log(`health list: down ${downRows}, online ${onRows}`);

    step = 'no page error, no policy violation';
    check(problems.length === 0, problems.join('\n'));
    log('ok');
  } catch (e) {
    await shot(page, 'failure').catch(() => {});
    if (problems.length) console.error(problems.join('\n'));
    throw e;
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`browser: FAIL ${e.message}`);
  process.exit(1);
});
