// Korean and English text of the console. t(key, ...args) fills {0}, {1}, ... in order.
const TEXT = {
  ko: {
    'tab.alerts': '경보', 'alerts.title': '경보 (미확인·확인)', 'alerts.live': '실시간 수신 중',
    'alerts.offline': '실시간 연결 끊김: 다시 연결 중…', 'alerts.none': '경보 없음',
    'alerts.ack': '확인', 'alerts.note': '조치 메모 (선택)', 'alerts.acked': '{0} 확인 ({1}) {2}',
    'alerts.no_cameras': '비상벨을 비추는 카메라 없음', 'alerts.bell_cameras': '비상벨을 비추는 카메라 {0}대',
    'alerts.camera': '#{0} · {1} m · {2}°',
    'alerts.sev.critical': '긴급', 'alerts.sev.warning': '주의', 'alerts.sev.info': '정보',
    'alerts.kind.bell-pressed': '비상벨', 'alerts.kind.camera-offline': '카메라 장애',
    'alerts.kind.provider-down': '기관 카메라 다수 장애', 'alerts.kind.device-offline': '장치 무응답',
    'alerts.state.open': '미확인', 'alerts.state.acknowledged': '확인됨', 'alerts.state.resolved': '해소',
    'tab.map': '지도', 'tab.wall': '영상 월', 'tab.cameras': '카메라 목록',
    'logout': '로그아웃',
    'login.title': '관제 콘솔 로그인', 'login.user': '아이디', 'login.password': '비밀번호',
    'login.submit': '로그인', 'login.failed': '로그인 실패: {0}',
    'map.hint': '지도를 클릭하면 그 지점에서 이벤트를 엽니다. 카메라를 클릭하면 상세 정보가 보입니다.',
    'map.loading': '카메라 {0}대 불러오는 중…', 'map.loaded': '카메라 {0}대',
    'map.no_tiles': '배경지도 없음 (console.tile_url 미설정)',
    'event.new': '새 이벤트', 'event.where': '위치 {0}, {1}', 'event.service': '연계서비스',
    'event.agency': '요청 기관', 'event.incident': '사건번호', 'event.reason': '사유',
    'event.duration': '기간 (초)', 'event.open': '이벤트 열기', 'cancel': '취소',
    'event.title': '이벤트 #{0}', 'event.status': '상태', 'event.expires': '남은 시간',
    'event.cameras': '카메라 {0}대', 'event.extend': '연장', 'event.close': '종료',
    'event.approve': '승인', 'event.deny': '거절', 'event.closed_reason': '콘솔에서 종료',
    'event.none_left': '만료', 'event.basis': '법적 근거',
    'events.live': '진행 중인 이벤트', 'events.none': '없음',
    'grant.play': '재생', 'grant.revoke': '회수', 'grant.why': '{0} m, 가시성 {1}, 점수 {2}',
    'wall.layout': '화면 분할', 'wall.hint': '이벤트의 카메라를 타일로 끌어다 놓거나 재생을 누르세요.',
    'wall.empty': '비어 있음', 'wall.remaining': '남은 시간 {0}',
    'wall.connecting': '연결 중…', 'wall.stop': '중지',
    'why.grant_ended': '권한 종료 (grant_ended)', 'why.slow': '연결이 너무 느림 (1013)',
    'why.lost': '연결 끊김 ({0})', 'why.codec': '이 브라우저는 {0} 코덱을 재생할 수 없습니다',
    'why.no_mse': '이 브라우저에는 MediaSource가 없습니다', 'why.refused': '거부됨',
    'why.no_token': '토큰 없음 (이 기관의 이벤트가 아님)',
    'cam.id': 'ID', 'cam.name': '이름', 'cam.status': '상태', 'cam.kind': '종류',
    'cam.purpose': '목적', 'cam.agency': '기관', 'cam.health': '상태 점검',
    'cam.heading': '방향', 'cam.fov': '화각', 'cam.address': '주소', 'cam.rtsp': '영상 설정',
    'cameras.filter': '이름, 주소, 목적으로 찾기', 'cameras.more': '더 보기',
    'cameras.count': '{0}대 중 {1}대 표시',
    'status.active': '정상', 'status.inactive': '중지', 'status.unlocated': '위치 없음',
    'status.maintenance': '점검 중', 'status.pending': '승인 대기', 'status.closed': '종료',
    'status.expired': '만료', 'status.denied': '거절', 'status.revoked': '회수',
    'status.released': '해제',
    'health.online': '정상', 'health.degraded': '품질 저하', 'health.offline': '연결 끊김',
    'health.auth-failed': '인증 실패', 'health.unknown': '미확인',
    'health.legend': '카메라 상태', 'health.unwatched': '영상 미설정 (등록 상태 색)',
    'health.summary': '카메라 상태', 'health.summary_title': '누르면 연결 끊김·인증 실패 카메라만 보입니다',
    'health.filter_all': '모든 상태', 'health.filter_down': '장애 (연결 끊김·인증 실패)',
    'health.title': '상태 점검', 'health.state': '연결 상태', 'health.since': '언제부터',
    'health.reason': '사유', 'health.last_probe': '마지막 점검', 'health.last_ok': '마지막 정상',
    'health.failures': '연속 실패', 'health.live': '실시간 영상',
    'health.live_figures': '{0} fps · {1} kbps · {2}',
    'health.probe_ok': '성공', 'health.probe_failed': '실패',
    'health.transitions': '최근 상태 변화 {0}건', 'health.outages': '최근 30일 장애 {0}건 (합계 {1})',
    'health.ongoing': '계속 중', 'health.for': '{0}째', 'health.since_short': '{0}부터',
    'dur.d': '{0}일', 'dur.h': '{0}시간', 'dur.m': '{0}분', 'dur.s': '{0}초',
    'yes': '예', 'no': '아니오', 'error': '오류: {0}',
  },
  en: {
    'tab.alerts': 'Alerts', 'alerts.title': 'Alerts (open and acknowledged)', 'alerts.live': 'live',
    'alerts.offline': 'live feed lost: reconnecting…', 'alerts.none': 'No alerts',
    'alerts.ack': 'Acknowledge', 'alerts.note': 'note (optional)', 'alerts.acked': 'acknowledged by {0} ({1}) {2}',
    'alerts.no_cameras': 'no camera sees the bell', 'alerts.bell_cameras': '{0} cameras see the bell',
    'alerts.camera': '#{0} · {1} m · {2}°',
    'alerts.sev.critical': 'critical', 'alerts.sev.warning': 'warning', 'alerts.sev.info': 'info',
    'alerts.kind.bell-pressed': 'Emergency bell', 'alerts.kind.camera-offline': 'Camera offline',
    'alerts.kind.provider-down': 'Provider down', 'alerts.kind.device-offline': 'Device offline',
    'alerts.state.open': 'open', 'alerts.state.acknowledged': 'acknowledged', 'alerts.state.resolved': 'resolved',
    'tab.map': 'Map', 'tab.wall': 'Video wall', 'tab.cameras': 'Cameras',
    'logout': 'Log out',
    'login.title': 'Operator console', 'login.user': 'User name', 'login.password': 'Password',
    'login.submit': 'Log in', 'login.failed': 'Login failed: {0}',
    'map.hint': 'Click the map to open an event at that place; click a camera for its details.',
    'map.loading': 'Loading cameras: {0}…', 'map.loaded': '{0} cameras',
    'map.no_tiles': 'No base map (console.tile_url is not set)',
    'event.new': 'New event', 'event.where': 'At {0}, {1}', 'event.service': 'Service',
    'event.agency': 'For agency', 'event.incident': 'Incident number', 'event.reason': 'Reason',
    'event.duration': 'Duration (s)', 'event.open': 'Open event', 'cancel': 'Cancel',
    'event.title': 'Event #{0}', 'event.status': 'Status', 'event.expires': 'Time left',
    'event.cameras': '{0} cameras', 'event.extend': 'Extend', 'event.close': 'Close',
    'event.approve': 'Approve', 'event.deny': 'Deny', 'event.closed_reason': 'closed from the console',
    'event.none_left': 'expired', 'event.basis': 'Legal basis',
    'events.live': 'Live events', 'events.none': 'none',
    'grant.play': 'Play', 'grant.revoke': 'Revoke', 'grant.why': '{0} m, visibility {1}, score {2}',
    'wall.layout': 'Layout', 'wall.hint': 'Drag an event camera onto a tile, or press Play.',
    'wall.empty': 'empty', 'wall.remaining': '{0} left',
    'wall.connecting': 'connecting…', 'wall.stop': 'Stop',
    'why.grant_ended': 'grant ended (grant_ended)', 'why.slow': 'too slow for the stream (1013)',
    'why.lost': 'connection lost ({0})', 'why.codec': 'this browser cannot play {0}',
    'why.no_mse': 'this browser has no MediaSource', 'why.refused': 'refused',
    'why.no_token': 'no token (not this agency\'s event)',
    'cam.id': 'ID', 'cam.name': 'Name', 'cam.status': 'Status', 'cam.kind': 'Kind',
    'cam.purpose': 'Purpose', 'cam.agency': 'Agency', 'cam.health': 'Health',
    'cam.heading': 'Heading', 'cam.fov': 'Field of view', 'cam.address': 'Address',
    'cam.rtsp': 'Stream configured',
    'cameras.filter': 'Find by name, address, purpose', 'cameras.more': 'Show more',
    'cameras.count': 'showing {1} of {0}',
    'status.active': 'active', 'status.inactive': 'inactive', 'status.unlocated': 'unlocated',
    'status.maintenance': 'maintenance', 'status.pending': 'pending', 'status.closed': 'closed',
    'status.expired': 'expired', 'status.denied': 'denied', 'status.revoked': 'revoked',
    'status.released': 'released',
    'health.online': 'online', 'health.degraded': 'degraded', 'health.offline': 'offline',
    'health.auth-failed': 'auth failed', 'health.unknown': 'unknown',
    'health.legend': 'Camera health', 'health.unwatched': 'no stream (registry status colour)',
    'health.summary': 'Health', 'health.summary_title': 'Click to list the offline and auth-failed cameras',
    'health.filter_all': 'any health', 'health.filter_down': 'down (offline, auth failed)',
    'health.title': 'Health', 'health.state': 'Health state', 'health.since': 'Since',
    'health.reason': 'Reason', 'health.last_probe': 'Last probe', 'health.last_ok': 'Last OK',
    'health.failures': 'Failures in a row', 'health.live': 'Live stream',
    'health.live_figures': '{0} fps · {1} kbit/s · {2}',
    'health.probe_ok': 'ok', 'health.probe_failed': 'failed',
    'health.transitions': 'Recent changes ({0})', 'health.outages': 'Outages, last 30 days: {0} ({1} in all)',
    'health.ongoing': 'ongoing', 'health.for': 'for {0}', 'health.since_short': 'since {0}',
    'dur.d': '{0} d', 'dur.h': '{0} h', 'dur.m': '{0} min', 'dur.s': '{0} s',
    'yes': 'yes', 'no': 'no', 'error': 'Error: {0}',
  },
};

let lang = localStorage.getItem('cctvhub.lang') || 'ko';
const listeners = [];

export function t(key, ...args) {
  const s = (TEXT[lang] && TEXT[lang][key]) || TEXT.en[key] || key;
  return s.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)] ?? ''));
}

export function currentLang() {
  return lang;
}

// Fills every [data-i18n] element's text and [data-i18n-placeholder] placeholder.
export function applyI18n(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
}

export function setLang(l) {
  lang = l === 'en' ? 'en' : 'ko';
  localStorage.setItem('cctvhub.lang', lang);
  applyI18n();
  for (const fn of listeners) fn(lang);
}

export function onLangChange(fn) {
  listeners.push(fn);
}
