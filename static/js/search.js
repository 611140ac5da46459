// The search box's language: from: to: subject: has:attachment is:unread
// is:read is:flagged before: after: larger: in: "quoted phrases" and -word,
// turned into messages.search's parameters. When the server reads the
// operators itself (its query parameter says so), the text goes as is.

/**
 * @param {string} q
 * @param {boolean} [raw] the server parses operators: send the text whole
 * @returns {{params: Record<string, any>, inName: string | null}}
 */
export function parseQuery(q, raw) {
  /** @type {Record<string, any>} */
  const p = {};
  /** @type {string | null} */
  let inName = null;
  /** @type {string[]} */
  const free = [];
  const re = /(-?)(\w+:)?("([^"]*)"|\S+)/g;
  for (const m of q.matchAll(re)) {
    const neg = m[1] === '-';
    const op = (m[2] || '').toLowerCase();
    const val = m[4] !== undefined ? m[4] : m[3];
    if (op === 'in:') { inName = val; continue; }
    if (raw) continue;
    switch (op) {
      case 'from:': p.from = val; break;
      case 'to:': p.to = val; break;
      case 'subject:': p.subject = val; break;
      case 'has:': if (val === 'attachment') p.hasAttachment = !neg; break;
      case 'is:': {
        const k = neg ? 'notFlags' : 'flags', nk = neg ? 'flags' : 'notFlags';
        if (val === 'unread') (p[nk] ||= []).push('seen');
        else if (val === 'read') (p[k] ||= []).push('seen');
        else if (val === 'flagged' || val === 'starred') (p[k] ||= []).push('flagged');
        else if (val === 'answered') (p[k] ||= []).push('answered');
        break;
      }
      case 'before:': { const d = day(val); if (d) p.before = d; break; }
      case 'after:': case 'since:': { const d = day(val); if (d) p.since = d; break; }
      case 'larger:': p.larger = bytes(val); break;
      default: free.push((neg ? '-' : '') + (op ? op + val : m[4] !== undefined ? `"${val}"` : val));
    }
  }
  if (raw) p.query = q.replace(/(^|\s)in:("[^"]*"|\S+)/gi, ' ').trim();
  else if (free.length) p.query = free.join(' ');
  return { params: p, inName };
}

/** @param {string} v a date (2026-01-31) or a number of days ago (7d) */
function day(v) {
  const ago = /^(\d+)d$/.exec(v);
  const d = ago ? new Date(Date.now() - Number(ago[1]) * 86400e3) : new Date(v + (v.length === 10 ? 'T00:00:00' : ''));
  return isNaN(d.getTime()) ? null : d.toISOString();
}

/** @param {string} v 10k, 2M, 1000 */
function bytes(v) {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)b?$/i.exec(v);
  if (!m) return 0;
  return Math.round(Number(m[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 })[/** @type {''|'k'|'m'|'g'} */ (m[2].toLowerCase())]);
}
