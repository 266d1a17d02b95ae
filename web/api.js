// The hub's API: the session cookie goes along by itself (same origin); requests that change
// state carry the session's CSRF token, kept in memory only.
let csrf = null;

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error && body.error.code;
    this.body = body;
  }
}

export async function call(method, path, body) {
  const headers = {};
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['X-CSRF-Token'] = csrf;
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

export async function login(username, password) {
  const r = await call('POST', '/api/v1/session', { username, password });
  csrf = r.csrf;
  return r;
}

// Who is logged in, or null; picks up the CSRF token of a session that survived a reload.
export async function whoami() {
  try {
    const r = await call('GET', '/api/v1/session');
    csrf = r.csrf || null;
    return r;
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

export async function logout() {
  try {
    await call('DELETE', '/api/v1/session');
  } finally {
    csrf = null;
  }
}

// Every page of a list (limit 1000, following next); onPage(items, soFar, total) after each,
// onRawPage(page) with the whole answer (for fields beside the items, such as counts).
export async function listAll(path, onPage, onRawPage) {
  const items = [];
  let cursor = null;
  const sep = path.includes('?') ? '&' : '?';
  do {
    const page = await call('GET', `${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    items.push(...page.items);
    if (onPage) onPage(page.items, items.length, page.total);
    if (onRawPage) onRawPage(page);
    cursor = page.next;
  } while (cursor);
  return items;
}
