// The message list: virtual scrolling over a whole folder (or a search's
// results). Rows have a fixed height, the scroll area is as tall as every
// row together, and only the rows in view exist; their data is fetched by
// page as they come into view and kept in a cache of pages. Nothing that
// is shown moves while data arrives: a row not yet loaded is a
// placeholder of the same height.
import { h, icon, clear } from './dom.js';
import { T, shortDate } from './strings.js';

export const PAGE = 50;
const OVERSCAN = 6;
const MAX_PAGES = 400;
const MAX_INFLIGHT = 3;

/**
 * @typedef {{address: string, name?: string}} Addr
 * @typedef {{messageID: string, folderID: number, uid: number, threadID: number, threadCount?: number, flags: string[], tags: string[],
 *   from: Addr[], to: Addr[], cc: Addr[], subject: string, utc: number, sent?: number, snippet: string, bytes: number, hasAttachments: boolean}} Msg
 * @typedef {(start: number, limit: number) => Promise<{messages: Msg[], total: number}>} Source
 */

export class MessageList {
  /**
   * @param {HTMLElement} scroller
   * @param {{open: (m: Msg, index: number) => void, selection: (ids: string[]) => void, dragStart?: (ids: string[], e: DragEvent) => void, error: (e: any) => void}} hooks
   */
  constructor(scroller, hooks) {
    this.scroller = scroller;
    this.hooks = hooks;
    this.spacer = h('div', { class: 'spacer' });
    this.empty = h('p', { class: 'list-empty', hidden: true, text: T.empty });
    scroller.append(this.spacer, this.empty);
    this.rowH = 60;
    this.total = 0;
    /** @type {Source | null} */
    this.source = null;
    this.gen = 0;
    /** @type {Map<number, {msgs: Msg[], gen: number}>} */
    this.pages = new Map();
    /** @type {Set<number>} */
    this.inflight = new Set();
    /** @type {Map<number, HTMLElement>} */
    this.rows = new Map();
    /** @type {Set<string>} */
    this.selected = new Set();
    /** @type {Set<string>} ids shown as leaving (moved or deleted, server not yet answered) */
    this.leaving = new Set();
    this.anchor = -1;
    this.cursor = -1;
    /** @type {string | null} */
    this.openID = null;
    /** @type {((n: number) => void) | null} */
    this.onTotal = null;
    /** @type {(() => void)[]} */
    this.waiters = [];
    this.raf = 0;
    scroller.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(scroller);
    scroller.addEventListener('click', (e) => this.click(/** @type {MouseEvent} */ (e)));
    scroller.addEventListener('dragstart', (e) => this.dragstart(/** @type {DragEvent} */ (e)));
  }

  /** @param {number} px */
  setRowHeight(px) {
    const first = Math.floor(this.scroller.scrollTop / this.rowH);
    this.rowH = px;
    for (const r of this.rows.values()) r.remove();
    this.rows.clear();
    this.spacer.style.height = this.total * this.rowH + 'px';
    this.scroller.scrollTop = first * this.rowH;
    this.schedule();
  }

  /**
   * Shows another folder or search: the old rows go, the scroll returns
   * to the top, and the first pages load.
   * @param {Source} source
   * @param {number} [total] the number of messages, when known (a folder's count) so the scrollbar is right at once
   */
  async show(source, total) {
    this.source = source;
    this.gen++;
    this.pages.clear();
    this.inflight.clear();
    this.selected.clear();
    this.leaving.clear();
    this.anchor = this.cursor = -1;
    for (const r of this.rows.values()) r.remove();
    this.rows.clear();
    this.setTotal(total ?? 0);
    this.scroller.scrollTop = 0;
    await this.load(0);
    this.render();
    this.hooks.selection([]);
  }

  /**
   * Reloads what is in view after a change, keeping the rows shown until
   * their new data is there (no flash, no jump).
   */
  async refresh() {
    if (!this.source) return;
    const gen = ++this.gen;
    this.inflight.clear();
    const [a, b] = this.visiblePages();
    const jobs = [];
    for (let p = a; p <= b; p++) jobs.push(this.load(p));
    await Promise.all(jobs);
    // A newer refresh started while this one waited: its pages are the
    // ones to keep, and it redraws when they are in.
    if (gen !== this.gen) return;
    for (const [p, pg] of this.pages) if (pg.gen !== gen) this.pages.delete(p);
    this.render(true);
    // A page that failed or was scrolled to meanwhile is fetched now,
    // not left as placeholders until the next scroll.
    this.schedule();
  }

  /** @param {number} n */
  setTotal(n) {
    if (n === this.total && this.spacer.style.height) return;
    this.total = n;
    this.spacer.style.height = n * this.rowH + 'px';
    this.empty.hidden = n > 0;
    this.onTotal?.(n);
  }

  visiblePages() {
    const top = this.scroller.scrollTop, hgt = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / this.rowH) - OVERSCAN);
    const last = Math.min(Math.max(0, this.total - 1), Math.ceil((top + hgt) / this.rowH) + OVERSCAN);
    return [Math.floor(first / PAGE), Math.floor(last / PAGE)];
  }

  schedule() {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => { this.raf = 0; this.render(); this.fetchVisible(); });
  }

  fetchVisible() {
    const [a, b] = this.visiblePages();
    for (let p = a; p <= b && this.inflight.size < MAX_INFLIGHT; p++) {
      const pg = this.pages.get(p);
      if ((!pg || pg.gen !== this.gen) && !this.inflight.has(p)) this.load(p).then(() => this.schedule());
    }
  }

  /** @param {number} p */
  async load(p) {
    if (!this.source || this.inflight.has(p)) return;
    const gen = this.gen, src = this.source;
    this.inflight.add(p);
    try {
      const r = await src(p * PAGE, PAGE);
      if (src !== this.source) return;
      // Answers can come back out of order: an older one never replaces
      // a page a newer request has already filled.
      const cur = this.pages.get(p);
      if (gen < this.gen && cur && cur.gen > gen) return;
      this.pages.set(p, { msgs: r.messages, gen });
      if (gen === this.gen) this.setTotal(r.total);
      if (this.pages.size > MAX_PAGES) this.evict(p);
    } catch (e) {
      this.hooks.error(e);
    } finally {
      if (gen === this.gen) this.inflight.delete(p);
      const w = this.waiters; this.waiters = []; w.forEach((f) => f());
    }
  }

  /** @param {number} keep */
  evict(keep) {
    const far = [...this.pages.keys()].sort((x, y) => Math.abs(y - keep) - Math.abs(x - keep));
    for (const p of far.slice(0, this.pages.size - MAX_PAGES)) this.pages.delete(p);
  }

  /** @param {number} i @returns {Msg | undefined} */
  at(i) {
    const pg = this.pages.get(Math.floor(i / PAGE));
    return pg?.msgs[i % PAGE];
  }

  /** @param {string} id */
  indexOf(id) {
    for (const [p, pg] of this.pages) {
      const j = pg.msgs.findIndex((m) => m.messageID === id);
      if (j >= 0) return p * PAGE + j;
    }
    return -1;
  }

  /** @param {boolean} [force] redraw rows even when their index did not change */
  render(force) {
    const top = this.scroller.scrollTop, hgt = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / this.rowH) - OVERSCAN);
    const last = Math.min(this.total - 1, Math.ceil((top + hgt) / this.rowH) + OVERSCAN);
    for (const [i, r] of this.rows) {
      if (i < first || i > last) { r.remove(); this.rows.delete(i); }
    }
    for (let i = first; i <= last; i++) {
      const m = this.at(i);
      const old = this.rows.get(i);
      // A row is only replaced when what it shows changed, so nothing
      // under the pointer (a drag, a hover) is pulled away.
      const key = m ? m.messageID + '|' + m.flags.join() + '|' + (m.threadCount || 0) + '|' + m.subject + '|' + this.stateKey(m) + '|' + this.total : 'p' + this.total;
      if (old && old.dataset.key === key && !(force && !m)) continue;
      const row = this.row(i, m);
      row.dataset.key = key;
      if (old) old.replaceWith(row); else this.spacer.append(row);
      this.rows.set(i, row);
    }
  }

  /** @param {Msg} m */
  stateKey(m) {
    return `${this.selected.has(m.messageID) ? 's' : ''}${this.openID === m.messageID ? 'o' : ''}${this.leaving.has(m.messageID) ? 'l' : ''}${this.cursor >= 0 && this.at(this.cursor) === m ? 'c' : ''}`;
  }

  /** @param {number} i @param {Msg | undefined} m */
  row(i, m) {
    const style = `top:${i * this.rowH}px;height:${this.rowH}px`;
    if (!m) {
      return h('div', { class: 'row placeholder', role: 'option', 'aria-selected': 'false', 'aria-posinset': i + 1, 'aria-setsize': this.total, style, dataset: { i: String(i) } },
        h('span', { class: 'sk sk1' }), h('span', { class: 'sk sk2' }));
    }
    const unread = !m.flags.includes('seen'), flagged = m.flags.includes('flagged');
    const from = m.from[0];
    const who = from ? (from.name || from.address) : T.noSender;
    const sel = this.selected.has(m.messageID);
    const cls = ['row', unread && 'unread', flagged && 'flagged', sel && 'selected', this.openID === m.messageID && 'open',
      this.leaving.has(m.messageID) && 'leaving', this.cursor === i && 'cursor'].filter(Boolean).join(' ');
    // What a screen reader says for the row: the markers in words, not by colour alone.
    const marks = [unread && T.unread, flagged && T.flagged, m.hasAttachments && T.hasAttachment, (m.threadCount || 0) > 1 && T.inThread(m.threadCount || 0)].filter(Boolean);
    const row = h('div', {
      class: cls, role: 'option', id: 'row-' + m.messageID, 'aria-selected': String(sel), 'aria-posinset': i + 1, 'aria-setsize': this.total,
      draggable: 'true', style, dataset: { i: String(i), id: m.messageID, state: this.stateKey(m) },
    },
    h('span', { class: 'mk mk-unread' }, unread ? icon('dot') : null),
    h('span', { class: 'who', text: who }),
    (m.threadCount || 0) > 1 ? h('span', { class: 'count', text: String(m.threadCount) }) : null,
    h('span', { class: 'mk mk-clip' }, m.hasAttachments ? icon('clip') : null),
    h('span', { class: 'mk mk-star' }, flagged ? icon('star') : null),
    h('time', { class: 'when', datetime: new Date(m.utc * 1000).toISOString(), text: shortDate(m.utc) }),
    h('span', { class: 'subj' }, h('span', { class: 'subject', text: m.subject || T.noSubject }), h('span', { class: 'snippet', text: m.snippet ? ' — ' + m.snippet : '' })),
    marks.length ? h('span', { class: 'sr', text: ', ' + marks.join(', ') }) : null);
    return row;
  }

  /** @param {MouseEvent} e */
  click(e) {
    const row = /** @type {HTMLElement | null} */ (/** @type {HTMLElement} */ (e.target).closest('.row'));
    if (!row || row.classList.contains('placeholder')) return;
    const i = Number(row.dataset.i);
    const m = this.at(i);
    if (!m) return;
    if (e.shiftKey && this.anchor >= 0) {
      const [a, b] = this.anchor < i ? [this.anchor, i] : [i, this.anchor];
      if (!(e.ctrlKey || e.metaKey)) this.selected.clear();
      for (let k = a; k <= b; k++) { const x = this.at(k); if (x) this.selected.add(x.messageID); }
      this.cursor = i;
    } else if (e.ctrlKey || e.metaKey) {
      if (this.selected.has(m.messageID)) this.selected.delete(m.messageID); else this.selected.add(m.messageID);
      this.anchor = this.cursor = i;
    } else {
      this.selected.clear();
      this.selected.add(m.messageID);
      this.anchor = this.cursor = i;
      this.openID = m.messageID;
      this.hooks.open(m, i);
    }
    this.render(true);
    this.hooks.selection([...this.selected]);
  }

  /** @param {DragEvent} e */
  dragstart(e) {
    const row = /** @type {HTMLElement | null} */ (/** @type {HTMLElement} */ (e.target).closest('.row'));
    const id = row?.dataset.id;
    if (!id || !e.dataTransfer) return;
    const ids = this.selected.has(id) ? [...this.selected] : [id];
    e.dataTransfer.setData('application/x-basalt-messages', JSON.stringify(ids));
    e.dataTransfer.effectAllowed = 'move';
    this.hooks.dragStart?.(ids, e);
  }

  /**
   * Moves the cursor by d rows (j/k), loading the page it lands on.
   * @param {number} d @param {boolean} [open]
   */
  async step(d, open) {
    if (this.total === 0) return;
    const i = Math.min(this.total - 1, Math.max(0, (this.cursor < 0 ? -1 : this.cursor) + d));
    await this.ensure(i);
    this.cursor = i;
    this.reveal(i);
    const m = this.at(i);
    if (m && open) { this.selected.clear(); this.selected.add(m.messageID); this.anchor = i; this.openID = m.messageID; this.hooks.open(m, i); this.hooks.selection([...this.selected]); }
    this.render(true);
  }

  /** @param {number} i */
  async ensure(i) {
    const p = Math.floor(i / PAGE);
    if (!this.pages.has(p)) await this.load(p);
  }

  /** @param {number} i */
  reveal(i) {
    const top = i * this.rowH, s = this.scroller;
    if (top < s.scrollTop) s.scrollTop = top;
    else if (top + this.rowH > s.scrollTop + s.clientHeight) s.scrollTop = top + this.rowH - s.clientHeight;
  }

  /** The cursor's message, or the open one. */
  current() {
    return (this.cursor >= 0 && this.at(this.cursor)) || (this.openID ? this.at(this.indexOf(this.openID)) : undefined);
  }

  /** Selected ids, else the cursor's. */
  targets() {
    if (this.selected.size) return [...this.selected];
    const m = this.current();
    return m ? [m.messageID] : [];
  }

  /** @param {string} id */
  toggleSelect(id) {
    if (this.selected.has(id)) this.selected.delete(id); else this.selected.add(id);
    this.render(true);
    this.hooks.selection([...this.selected]);
  }

  /**
   * Updates one message's flags in place (optimistic).
   * @param {string[]} ids @param {(m: Msg) => void} f
   */
  patch(ids, f) {
    for (const pg of this.pages.values()) for (const m of pg.msgs) if (ids.includes(m.messageID)) f(m);
    this.render(true);
  }

  /** @param {string[]} ids @param {boolean} on */
  markLeaving(ids, on) {
    for (const id of ids) { if (on) this.leaving.add(id); else this.leaving.delete(id); }
    if (on) for (const id of ids) this.selected.delete(id);
    this.render(true);
  }

  /** The jump to a row index (for the test and for "g" keys): scrolls there and resolves when its rows show. */
  /** @param {number} i */
  async jump(i) {
    this.scroller.scrollTop = i * this.rowH;
    this.render();
    this.fetchVisible();
    await this.ensure(i);
    this.render();
  }

  clearRows() { clear(this.spacer); this.rows.clear(); }
}
