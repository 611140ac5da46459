// The JSON-RPC client: one POST /rpc per call with the session's CSRF
// token, errors turned into ApiError with words for the user, and a
// re-login hook when the session has ended (the call is then retried).
import { T } from './strings.js';

const CSRF_KEY = 'basalt.csrf';
const BASE = '/rpc';

export class ApiError extends Error {
  /** @param {number} code @param {string} message @param {any} [data] */
  constructor(code, message, data) {
    super(message);
    this.code = code;
    this.data = data || {};
    /** @type {string} */
    this.type = this.data.type || '';
  }
  /** What to tell the user: the kind in words, then the server's reason. */
  get words() {
    if (this.code === 0) return T.network;
    if (this.code === -32003) return T.rateLimited;
    if (this.code === -32006) return T.unavailable + (this.message ? ` (${this.message})` : '');
    const kind = T.errors[this.type];
    if (this.data.recipients?.length) {
      return this.data.recipients.map((/** @type {{address:string, reason:string}} */ r) => T.recipientRefused(r.address, r.reason)).join('; ');
    }
    if (kind && this.message && !this.message.toLowerCase().startsWith(kind.toLowerCase())) return `${kind}: ${this.message}`;
    return this.message || kind || T.failed;
  }
}

/** @type {(() => Promise<void>) | null} */
let reauth = null;
/** @type {Promise<void> | null} */
let reauthing = null;
let seq = 0;

/** @param {() => Promise<void>} f called when the session ended; resolves once signed in again */
export function onReauth(f) { reauth = f; }

export function csrf() { return sessionStorage.getItem(CSRF_KEY) || localStorage.getItem(CSRF_KEY) || ''; }
/** @param {string} t */
export function setCSRF(t) {
  if (t) { sessionStorage.setItem(CSRF_KEY, t); localStorage.setItem(CSRF_KEY, t); } else { sessionStorage.removeItem(CSRF_KEY); localStorage.removeItem(CSRF_KEY); }
}

/**
 * @param {string} method
 * @param {Record<string, any>} [params]
 * @returns {Promise<any>}
 */
export async function call(method, params = {}) {
  for (let attempt = 0; ; attempt++) {
    let res;
    try {
      res = await fetch(BASE, {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf() },
        body: JSON.stringify({ jsonrpc: '2.0', id: ++seq, method, params }),
      });
    } catch {
      throw new ApiError(0, T.network);
    }
    let body;
    try { body = await res.json(); } catch { throw new ApiError(res.status === 429 ? -32003 : -32006, res.statusText); }
    if (!body.error) return body.result;
    const e = new ApiError(body.error.code, body.error.message, body.error.data);
    const ended = e.code === -32001 || e.code === -32002 || (e.code === -32005 && !csrf());
    if (ended && method !== 'auth' && reauth && attempt === 0) {
      reauthing ??= reauth().finally(() => { reauthing = null; });
      await reauthing;
      continue;
    }
    throw e;
  }
}

/** @param {string} username @param {string} password */
export async function login(username, password) {
  const r = await call('auth', { username, password });
  if (r.auth === 'success') setCSRF(r.csrf);
  return r;
}

export async function logout() {
  try { await call('logout'); } finally { setCSRF(''); }
}

/**
 * Uploads files to a compose (POST /rpc/upload?composeID=N).
 * @param {number} composeID @param {File[]} files
 */
export async function upload(composeID, files) {
  const fd = new FormData();
  for (const f of files) fd.append('file', f, f.name || 'pasted.png');
  let res;
  try {
    res = await fetch(`${BASE}/upload?composeID=${composeID}`, { method: 'POST', body: fd, credentials: 'same-origin', headers: { 'X-CSRF-Token': csrf() } });
  } catch { throw new ApiError(0, T.network); }
  const body = await res.json().catch(() => ({}));
  if (!res.ok || body.error) {
    const err = body.error || {};
    throw new ApiError(err.code || res.status, err.message || res.statusText, err.data);
  }
  return body.result || body;
}

/**
 * The change stream (GET /rpc/events); calls back on each change.
 * @param {(ev: {kinds: string[], folderIDs: number[], resync: boolean}) => void} onChange
 * @param {() => void} onEnd
 */
export function events(onChange, onEnd) {
  const es = new EventSource(`${BASE}/events`, { withCredentials: true });
  es.addEventListener('change', (e) => { try { onChange(JSON.parse(/** @type {MessageEvent} */ (e).data)); } catch { /* a malformed event changes nothing */ } });
  es.addEventListener('end', () => { es.close(); onEnd(); });
  return es;
}
