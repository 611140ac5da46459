// The webmail app: login, the folder tree, the list, the reader, search,
// the event stream, the keyboard. Everything on screen is built here and
// in the modules it imports; index.html holds only the entry point.
import { h, $, clear, icon, ibtn, installIcons } from './dom.js';
import { T, size } from './strings.js';
import * as api from './api.js';
import { MessageList } from './list.js';
import { renderMessage, renderThread } from './reader.js';
import { openCompose, kept } from './compose.js';
import { toast, dialog, prompt, confirm, escape, pushEscape } from './ui.js';
import { showContacts, showSettings, shareDialog, keysOverlay } from './pages.js';

/**
 * @typedef {{folderID: number, parentID: number, name: string, path: string, total: number, unread: number, size: number, specialUse?: string, shared?: boolean, owner?: string}} Folder
 * @typedef {import('./list.js').Msg} Msg
 */

// The list's orders (messages.list sort), each with its direction
// (desc); date-desc, date-asc and uid, which say theirs, are left out.
const SORTS = ['arrival', 'sent', 'from', 'subject', 'size', 'flagged', 'unread'];

const S = {
  /** @type {{user: {address: string, userID: number, secure: boolean}, quota: {used: number, limit: number}} | null} */
  meta: null,
  /** @type {Folder[]} */
  folders: [],
  /** @type {Folder | null} */
  folder: null,
  /** @type {Record<string, string>} */
  prefs: {},
  sort: 'arrival',
  desc: true,
  threads: false,
  /** @type {{unread: boolean, flagged: boolean, attachments: boolean}} */
  filter: { unread: false, flagged: false, attachments: false },
  /** @type {string | null} */
  query: null,
  scopeAll: false,
  // The search's total is an estimate until messages.searchCount answers.
  estimated: false,
  /** @type {import('./reader.js').Loaded | null} */
  open: null,
  /** @type {EventSource | null} */
  es: null,
  inboxUnread: -1,
  listScroll: 0,
  // While messages are dragged (since when, ms; 0: not), the folder tree
  // is not redrawn under the pointer: a redraw waits for the drop.
  dragSince: 0,
  foldersStale: false,
};

/** @type {MessageList} */
let list;
const el = /** @type {Record<string, HTMLElement>} */ ({});

/** @param {string} name */
const mark = (name) => performance.mark(name);

// ---------- login ----------

/**
 * Shows the login form; resolves once signed in.
 * @param {string} [notice]
 * @returns {Promise<void>}
 */
function showLogin(notice) {
  return new Promise((resolve) => {
    const box = $('#login');
    clear(box);
    const err = h('p', { class: 'error', id: 'login-error', role: 'alert', hidden: !notice });
    if (notice) { err.textContent = notice; err.className = 'notice'; }
    const user = h('input', { id: 'username', name: 'username', type: 'email', autocomplete: 'username', required: true, value: localStorage.getItem('basalt.user') || '' });
    const pass = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
    const btn = h('button', { type: 'submit', class: 'btn primary', id: 'login-btn', text: T.signIn });
    const form = h('form', { class: 'login-form', 'aria-labelledby': 'login-title' },
      h('h1', { id: 'login-title' }, icon('mail', 'logo'), h('span', { text: T.loginTitle })), err,
      h('label', { for: 'username', text: T.username }), user,
      h('label', { for: 'password', text: T.password }), pass, btn);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      mark('login-start');
      btn.disabled = true; btn.textContent = T.signingIn;
      try {
        const r = await api.login(user.value.trim(), pass.value);
        if (r.auth === 'success') {
          localStorage.setItem('basalt.user', user.value.trim());
          box.hidden = true;
          clear(box);
          resolve();
          return;
        }
        err.className = 'error';
        err.textContent = r.auth === 'locked' ? T.locked(r.reason) : T.loginFailed;
        err.hidden = false;
        pass.value = '';
        pass.focus();
      } catch (e) {
        err.className = 'error';
        err.textContent = e instanceof api.ApiError ? e.words : T.failed;
        err.hidden = false;
      } finally { btn.disabled = false; btn.textContent = T.signIn; }
    });
    box.append(form);
    box.hidden = false;
    (user.value ? pass : user).focus();
  });
}

// ---------- shell ----------

function buildShell() {
  const app = $('#app');
  const search = h('input', { id: 'search', type: 'search', placeholder: T.search, 'aria-label': T.search, title: T.searchHelp, autocomplete: 'off', enterkeyhint: 'search' });
  const scope = h('select', { id: 'search-scope', 'aria-label': T.search }, h('option', { value: 'here', text: T.searchHere }), h('option', { value: 'all', text: T.searchAll }));
  const searchForm = h('form', { role: 'search', class: 'search', onsubmit: (/** @type {Event} */ e) => { e.preventDefault(); runSearch(search.value, scope.value === 'all'); } },
    icon('search'), search, scope);
  search.addEventListener('input', () => { if (!search.value && S.query !== null) runSearch('', false); });
  const top = h('header', { class: 'top' }, h('h1', { class: 'visually-hidden', text: T.app }),
    ibtn('menu', T.folders, () => toggleDrawer(), { cls: 'drawer-btn', id: 'drawer-btn' }),
    h('a', { class: 'brand', href: '#', 'aria-label': T.app, onclick: (/** @type {Event} */ e) => { e.preventDefault(); goInbox(); } }, icon('mail', 'logo'), h('span', { text: T.app })),
    searchForm,
    h('button', { type: 'button', class: 'btn primary', id: 'compose-btn', 'aria-label': T.compose, onclick: () => compose({}) }, icon('pen'), h('span', { text: T.compose })),
    h('nav', { class: 'account', 'aria-label': T.account },
      ibtn('user', T.contacts, () => showPage('contacts'), { id: 'contacts-btn' }),
      ibtn('moon', T.toggleTheme, toggleTheme, { id: 'theme-btn' }),
      ibtn('gear', T.settings, () => showPage('settings'), { id: 'settings-btn' }),
      ibtn('logout', T.logout, () => doLogout(), { id: 'logout-btn' })));
  el.folders = h('nav', { id: 'folders', class: 'folders', 'aria-label': T.folders });
  el.scroller = h('div', { id: 'list', class: 'list', role: 'listbox', 'aria-multiselectable': 'true', 'aria-label': T.messages, tabindex: '0' });
  el.count = h('span', { class: 'count-line', id: 'count-line', role: 'status' });
  const filt = (/** @type {'unread'|'flagged'|'attachments'} */ k, /** @type {string} */ label) => h('button', { type: 'button', class: 'btn chip-btn', id: 'filter-' + k, 'aria-pressed': 'false',
    onclick: (/** @type {Event} */ e) => { S.filter[k] = !S.filter[k]; /** @type {HTMLElement} */ (e.currentTarget).setAttribute('aria-pressed', String(S.filter[k])); loadList(); }, text: label });
  el.sort = h('select', { id: 'sort', 'aria-label': T.sortBy, onchange: () => {
    S.sort = /** @type {HTMLSelectElement} */ (el.sort).value;
    // Each order starts in its natural direction (A to Z for names, newest or largest first for the rest).
    S.desc = S.sort !== 'from' && S.sort !== 'subject';
    el.sortDir.setAttribute('aria-pressed', String(S.desc));
    savePref('sort', S.sort); savePref('desc', S.desc ? '1' : '0'); loadList();
  } },
    ...SORTS.map((s) => h('option', { value: s, text: T.sorts[s] })));
  el.sortDir = h('button', { type: 'button', class: 'btn chip-btn', id: 'sort-dir', 'aria-pressed': 'true', text: T.descending,
    onclick: () => { S.desc = !S.desc; el.sortDir.setAttribute('aria-pressed', String(S.desc)); savePref('desc', S.desc ? '1' : '0'); loadList(); } });
  const thr = h('button', { type: 'button', class: 'btn chip-btn', id: 'threads-btn', 'aria-pressed': 'false', onclick: () => { S.threads = !S.threads; thr.setAttribute('aria-pressed', String(S.threads)); savePref('threads', S.threads ? '1' : ''); loadList(); } },
    icon('thread'), h('span', { text: T.threads }));
  el.threadsBtn = thr;
  const bar = h('div', { class: 'list-bar' }, h('h2', { id: 'folder-title', class: 'folder-title' }), el.count,
    h('div', { class: 'filters', role: 'group', 'aria-label': T.messages }, filt('unread', T.filterUnread), filt('flagged', T.filterFlagged), filt('attachments', T.filterAttach), thr, el.sort, el.sortDir));
  el.listPane = h('section', { id: 'list-pane', class: 'list-pane', 'aria-labelledby': 'folder-title' }, bar, el.scroller);
  el.reader = h('section', { id: 'reader', class: 'reader', 'aria-label': T.body, tabindex: '-1' }, h('p', { class: 'placeholder-text', text: T.selectMessage }));
  el.main = h('main', { id: 'main', class: 'main' }, el.listPane, el.reader);
  // A page (contacts, settings) is the main content in the list's place:
  // one of the two mains is always hidden (HTML allows that).
  el.page = h('main', { id: 'page', class: 'page', 'aria-labelledby': 'page-title', hidden: true });
  el.scrim = h('div', { class: 'scrim', onclick: () => toggleDrawer(false) });
  app.append(top, el.folders, el.main, el.page, el.scrim);
  app.hidden = false;

  list = new MessageList(el.scroller, {
    open: (m) => openMessage(m),
    selection: (ids) => { el.count.textContent = ids.length > 1 ? T.selected(ids.length) : countText(); },
    dragStart: () => { S.dragSince = Date.now(); },
    error: (e) => fail(e),
  });
  // The drop (seen first, capturing) or the drag's end lets the tree be
  // redrawn; a new mail's redraw during the drag would have replaced the
  // folder under the pointer and lost the drop.
  const dragDone = () => { S.dragSince = 0; if (S.foldersStale) { S.foldersStale = false; setTimeout(drawFolders); } };
  document.addEventListener('drop', dragDone, true);
  document.addEventListener('dragend', dragDone, true);
  list.onTotal = () => { if (list.selected.size < 2) el.count.textContent = countText(); };
  el.scroller.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') { e.preventDefault(); list.step(e.key === 'ArrowDown' ? 1 : -1, false); }
    if (e.key === ' ' && list.current()) { e.preventDefault(); list.toggleSelect(/** @type {Msg} */ (list.current()).messageID); }
  });
  // Rows are announced through aria-activedescendant, the cursor moving.
  new MutationObserver(() => {
    const c = el.scroller.querySelector('.row.cursor');
    if (c) el.scroller.setAttribute('aria-activedescendant', c.id); else el.scroller.removeAttribute('aria-activedescendant');
  }).observe(el.scroller, { subtree: true, attributes: true, attributeFilter: ['class'] });
  addEventListener('popstate', () => {
    if (document.body.classList.contains('reading')) closeReader(false);
  });
}

function countText() {
  if (S.query !== null) return S.estimated ? T.searchAbout(list.total) : T.searchResults(list.total);
  return list.total.toLocaleString() + ' ' + T.messages.toLowerCase();
}

/** @param {boolean} [open] */
function toggleDrawer(open) {
  const on = open ?? !document.body.classList.contains('drawer');
  document.body.classList.toggle('drawer', on);
  if (on) { pushEscape(() => { const was = document.body.classList.contains('drawer'); document.body.classList.remove('drawer'); return was; }); el.folders.querySelector('button')?.focus(); }
}

// ---------- prefs, theme ----------

/** @param {string} k @param {string} v */
function savePref(k, v) {
  S.prefs[k] = v;
  localStorage.setItem('basalt.prefs', JSON.stringify(S.prefs));
  api.call('config.edit', { set: { [k]: v } }).catch(() => {});
}

export function applyPrefs() {
  const p = S.prefs;
  const root = document.documentElement;
  root.dataset.theme = p.theme || '';
  root.dataset.density = p.density || 'comfortable';
  document.body.classList.toggle('reader-below', p.reader === 'below');
  if (list) list.setRowHeight(p.density === 'compact' ? 34 : 60);
}

function toggleTheme() {
  const dark = document.documentElement.dataset.theme ? document.documentElement.dataset.theme === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
  savePref('theme', dark ? 'light' : 'dark');
  applyPrefs();
}

// ---------- folders ----------

const SPECIAL = ['\\Inbox', '\\Drafts', '\\Sent', '\\Archive', '\\Junk', '\\Trash'];
/** @param {Folder} f */
function folderIcon(f) {
  if (f.shared) return 'shared';
  const su = (f.specialUse || '').toLowerCase();
  if (f.name === 'INBOX' || su === '\\inbox') return 'inbox';
  for (const k of ['sent', 'drafts', 'trash', 'junk', 'archive']) if (su === '\\' + k) return k;
  return 'folder';
}
/** @param {Folder} f */
const folderName = (f) => (f.name === 'INBOX' ? 'Inbox' : f.name);
/** @param {string} use */
const special = (use) => S.folders.find((f) => (f.specialUse || '').toLowerCase() === use.toLowerCase() || (use === '\\Inbox' && f.name === 'INBOX'));

async function loadFolders() {
  await loadFoldersData();
  drawFolders();
  updateTitle();
}

/** Reads the folder list and the inbox's unread count (drawn by the caller). */
async function loadFoldersData() {
  const r = await api.call('folders.list', {});
  /** @type {Folder[]} */
  const fs = r.folders;
  // Folders others share with this user come with their owner.
  for (const f of fs) if (f.owner) f.shared = true;
  S.folders = fs;
  const inbox = special('\\Inbox');
  const unread = inbox ? inbox.unread : 0;
  if (S.inboxUnread >= 0 && unread > S.inboxUnread) notifyNew(unread - S.inboxUnread);
  S.inboxUnread = unread;
}

function updateTitle() { document.title = T.title(S.inboxUnread, S.folder ? folderName(S.folder) : 'Inbox'); }

function drawFolders() {
  // A drag that lost its end (its row was redrawn away) holds nothing
  // back for long.
  if (S.dragSince && Date.now() - S.dragSince < 30e3) { S.foldersStale = true; return; }
  const nav = clear(el.folders);
  nav.append(h('h2', { class: 'visually-hidden', text: T.folders }));
  const own = S.folders.filter((f) => !f.shared);
  /** @type {Map<number, Folder[]>} */
  const kids = new Map();
  for (const f of own) { const k = kids.get(f.parentID) || []; k.push(f); kids.set(f.parentID, k); }
  const rank = (/** @type {Folder} */ f) => { const i = f.name === 'INBOX' ? 0 : SPECIAL.findIndex((s) => s.toLowerCase() === (f.specialUse || '').toLowerCase()); return i < 0 ? 99 : i; };
  /** @param {number} parent @param {number} depth */
  const tree = (parent, depth) => {
    const ul = h('ul', { role: depth ? 'group' : 'tree', 'aria-label': depth ? undefined : T.folders });
    const items = (kids.get(parent) || []).sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
    for (const f of items) {
      const li = h('li', { role: 'treeitem', 'aria-selected': String(S.folder?.folderID === f.folderID), 'aria-expanded': kids.has(f.folderID) ? 'true' : undefined }, folderRow(f));
      if (kids.has(f.folderID)) li.append(tree(f.folderID, depth + 1));
      ul.append(li);
    }
    return ul;
  };
  nav.append(tree(0, 0));
  const shared = S.folders.filter((f) => f.shared);
  if (shared.length) {
    nav.append(h('h3', { class: 'nav-h', text: T.sharedWithMe }));
    const ul = h('ul', { role: 'tree', 'aria-label': T.sharedWithMe });
    for (const f of shared) ul.append(h('li', { role: 'treeitem', 'aria-selected': String(S.folder?.folderID === f.folderID) }, folderRow(f)));
    nav.append(ul);
  }
  nav.append(h('button', { type: 'button', class: 'btn new-folder', id: 'new-folder', onclick: () => newFolder(0) }, icon('plus'), h('span', { text: T.newFolder })));
  if (S.meta) nav.append(h('p', { class: 'quota', text: T.quota(size(S.meta.quota.used), S.meta.quota.limit ? size(S.meta.quota.limit) : '∞') }));
}

/** @param {Folder} f */
function folderRow(f) {
  const name = folderName(f) + (f.owner ? ` (${f.owner})` : '');
  const btn = h('button', { type: 'button', class: 'folder' + (S.folder?.folderID === f.folderID ? ' current' : '') + (f.unread ? ' has-unread' : ''), dataset: { folder: String(f.folderID) },
    'aria-current': S.folder?.folderID === f.folderID ? 'page' : undefined, onclick: () => { toggleDrawer(false); selectFolder(f); } },
  icon(folderIcon(f)), h('span', { class: 'fname', text: name }),
  f.unread ? h('span', { class: 'badge' }, h('span', { 'aria-hidden': 'true', text: String(f.unread) }), h('span', { class: 'sr', text: T.unreadCount(f.unread) })) : null);
  // Messages dragged from the list are dropped here.
  btn.addEventListener('dragover', (e) => { if (e.dataTransfer?.types.includes('application/x-basalt-messages')) { e.preventDefault(); btn.classList.add('drop'); } });
  btn.addEventListener('dragleave', () => btn.classList.remove('drop'));
  btn.addEventListener('drop', (e) => {
    btn.classList.remove('drop');
    const raw = e.dataTransfer?.getData('application/x-basalt-messages');
    if (!raw) return;
    e.preventDefault();
    moveMessages(JSON.parse(raw), f);
  });
  const menu = f.shared ? null : ibtn('more', `${T.more}: ${folderName(f)}`, (e) => folderMenu(f, /** @type {HTMLElement} */ (e.currentTarget)), { cls: 'folder-menu' });
  return h('div', { class: 'folder-row' }, btn, menu);
}

/** @param {Folder} f @param {HTMLElement} anchor */
async function folderMenu(f, anchor) {
  const isSpecial = !!f.specialUse || f.name === 'INBOX';
  const opts = [[T.newFolder, 'new'], ...(isSpecial ? [] : [[T.renameFolder, 'rename'], [T.moveFolder, 'move'], [T.deleteFolder, 'delete']]),
    ...(f.name !== 'INBOX' ? [[T.shareFolder, 'share']] : [])];
  const fd = await dialog(folderName(f), (form) => {
    const fs = h('fieldset', {}, h('legend', { class: 'visually-hidden', text: T.more }));
    opts.forEach(([label, v], i) => fs.append(h('label', { class: 'radio' }, h('input', { type: 'radio', name: 'act', value: v, checked: i === 0 }), label)));
    form.append(fs);
  }, 'OK');
  anchor.focus();
  const act = fd?.get('act');
  try {
    if (act === 'new') await newFolder(f.folderID);
    if (act === 'rename') {
      const n = await prompt(T.renameFolder, T.folderName, f.name);
      if (n) { await api.call('folders.rename', { folderID: f.folderID, name: n }); await loadFolders(); }
    }
    if (act === 'move') {
      const fd2 = await dialog(T.moveFolder, (form) => form.append(h('label', { for: 'dlg-parent', text: T.moveFolder }),
        h('select', { id: 'dlg-parent', name: 'p' }, h('option', { value: '0', text: T.topLevel }),
          ...S.folders.filter((x) => x.folderID !== f.folderID && !x.shared).map((x) => h('option', { value: String(x.folderID), text: x.path || x.name })))));
      const p = fd2?.get('p');
      if (p !== null && p !== undefined) { await api.call('folders.move', { folderID: f.folderID, parentID: Number(p) }); await loadFolders(); }
    }
    if (act === 'delete' && await confirm(T.deleteFolder, T.confirmDeleteFolder(f.name), T.deleteFolder)) {
      await api.call('folders.remove', { folderID: f.folderID });
      if (S.folder?.folderID === f.folderID) goInbox();
      await loadFolders();
    }
    if (act === 'share') await shareDialog(f, toast);
  } catch (e) { fail(e); }
}

/** @param {number} parentID */
async function newFolder(parentID) {
  const n = await prompt(T.newFolder, T.folderName);
  if (!n) return;
  try { await api.call('folders.add', { name: n, parentID }); await loadFolders(); } catch (e) { fail(e); }
}

/** @param {Folder} f */
async function selectFolder(f) {
  showPage(null);
  S.folder = f;
  S.query = null;
  /** @type {HTMLInputElement} */ ($('#search')).value = '';
  $('#folder-title').textContent = folderName(f);
  drawFolders();
  updateTitle();
  closeReader(true);
  await loadList();
}

function goInbox() { const i = special('\\Inbox'); if (i) selectFolder(i); }

// ---------- the list's sources ----------

async function loadList() {
  if (!S.folder) return;
  const folderID = S.folder.folderID;
  const f = S.filter;
  const filtered = f.unread || f.flagged || f.attachments;
  /** @type {import('./list.js').Source} */
  let src;
  let total;
  if (S.query !== null) {
    // The server reads the operators (from:, is:, in: and the rest); the
    // quick filters are more of them.
    const terms = [S.query, f.unread ? 'is:unread' : '', f.flagged ? 'is:flagged' : '', f.attachments ? 'has:attachment' : ''].filter(Boolean).join(' ');
    const scoped = !S.scopeAll && !/(^|\s)in:/i.test(S.query);
    const params = { query: terms, ...(scoped ? { folderID } : {}) };
    let counting = false;
    S.estimated = false;
    src = async (start, limit) => {
      mark('search-start');
      const r = await api.call('messages.search', { ...params, start, limit });
      mark('search-end'); performance.measure('search', 'search-start', 'search-end');
      // In a large mailbox a costly count is not waited for: the page
      // comes with an estimate, and the count is asked apart.
      S.estimated = !!r.totalEstimated;
      if (r.totalEstimated && !counting) {
        counting = true;
        api.call('messages.searchCount', params).then((c) => {
          counting = false;
          if (list.source !== src) return;
          S.estimated = false;
          list.setTotal(c.total);
          el.count.textContent = countText();
        }, () => { counting = false; });
      }
      return r;
    };
  } else {
    total = S.threads ? undefined : S.folder.total;
    src = (start, limit) => api.call('messages.list', { folderID, start, limit, sort: S.sort, desc: S.desc,
      ...(S.threads ? { threads: true } : {}), ...(filtered ? { filter: { unread: f.unread, flagged: f.flagged, attachments: f.attachments } } : {}) });
  }
  await list.show(src, total);
  el.count.textContent = countText();
  mark('list-rendered');
}

/** @param {string} q @param {boolean} all */
async function runSearch(q, all) {
  S.query = q.trim() ? q.trim() : null;
  S.scopeAll = all;
  $('#folder-title').textContent = S.query === null ? (S.folder ? folderName(S.folder) : '') : (all ? T.searchAll : (S.folder ? folderName(S.folder) : '')) + ': ' + q;
  closeReader(true);
  await loadList();
}

// ---------- reading ----------

/** @param {Msg} m @param {boolean} [showImages] asked for this message */
async function openMessage(m, showImages) {
  mark('open-start');
  showReader();
  try {
    /** @type {Record<string, any>} */
    const p = { messageID: m.messageID, sections: ['meta', 'header', 'body', 'attachments', 'security'] };
    // The server applies the remote-image policy and the sender list itself.
    if (showImages) p.images = 'show';
    const msg = await api.call('messages.load', p);
    if (list.openID !== m.messageID) return;
    S.open = msg;
    renderMessage(el.reader, msg, readerActions(m));
    mark('open-end');
    performance.measure('open', 'open-start', 'open-end');
    if (S.threads && (m.threadCount || 0) > 1) {
      const t = await api.call('messages.thread', { threadID: m.threadID, folderID: m.folderID });
      renderThread(el.reader, t.messages, (x) => { list.openID = x.messageID; openMessage(x); });
    }
    if (!m.flags.includes('seen')) {
      list.patch([m.messageID], (x) => { x.flags = [...x.flags, 'seen']; });
      adjustUnread(m.folderID, -1);
      api.call('messages.flag', { action: 'add', messageIDs: [m.messageID], flags: ['seen'] }).catch((e) => {
        list.patch([m.messageID], (x) => { x.flags = x.flags.filter((f) => f !== 'seen'); });
        adjustUnread(m.folderID, 1);
        fail(e);
      });
    }
  } catch (e) { fail(e); }
}

/** @param {number} folderID @param {number} d */
function adjustUnread(folderID, d) {
  const f = S.folders.find((x) => x.folderID === folderID);
  if (!f) return;
  f.unread = Math.max(0, f.unread + d);
  if (f === special('\\Inbox')) S.inboxUnread = f.unread;
  drawFolders();
  updateTitle();
}

/** @param {Msg} m @returns {import('./reader.js').ReaderActions} */
function readerActions(m) {
  return {
    reply: (all) => compose({ mode: all ? 'replyAll' : 'reply' }),
    forward: () => compose({ mode: 'forward' }),
    remove: () => deleteMessages([m.messageID]),
    archive: () => archive([m.messageID]),
    flag: () => flagMessages([m.messageID], 'flagged'),
    unread: () => flagMessages([m.messageID], 'seen', false),
    showImages: (always) => {
      const sender = m.from[0]?.address?.toLowerCase();
      if (always && sender) {
        api.call('settings.images', { addSenders: [sender] }).catch(fail);
      }
      openMessage(m, true);
    },
    source: () => viewSource(m.messageID),
    back: () => history.back(),
  };
}

function showReader() {
  if (!document.body.classList.contains('reading')) {
    S.listScroll = el.scroller.scrollTop;
    document.body.classList.add('reading');
    if (matchMedia('(max-width: 699px)').matches) history.pushState({ reading: true }, '');
  }
}

/** @param {boolean} clearPane */
function closeReader(clearPane) {
  const was = document.body.classList.contains('reading');
  document.body.classList.remove('reading');
  if (was) {
    // Back on the list where it was left.
    el.scroller.scrollTop = S.listScroll;
    list.render(true);
    const row = el.scroller.querySelector('.row.open');
    /** @type {HTMLElement} */ (row || el.scroller).focus({ preventScroll: true });
  }
  if (clearPane) {
    S.open = null;
    list.openID = null;
    clear(el.reader).append(h('p', { class: 'placeholder-text', text: T.selectMessage }));
  }
  return was;
}

/** @param {string} id */
async function viewSource(id) {
  try {
    // The source comes with messages.load, cut at a megabyte; past
    // that, the whole of it from the sourceURL the API names.
    const m = await api.call('messages.load', { messageID: id, sections: ['source'] });
    let text = m.source;
    if (m.sourceTruncated) {
      const r = await fetch(m.sourceURL, { credentials: 'same-origin' });
      if (!r.ok) throw new Error(`${T.failed} (${r.status})`);
      text = await r.text();
    }
    await dialog(T.sourceTitle, (f) => f.append(h('pre', { class: 'source', tabindex: '0', text })), T.close);
  } catch (e) { fail(e); }
}

// ---------- actions ----------

/** @param {any} e */
function fail(e) { if (!(e instanceof api.ApiError)) console.error(String(e?.stack || e)); toast(e instanceof api.ApiError ? e.words : (e?.message || T.failed), { error: true }); }

/** @param {string[]} ids @param {Folder} to */
async function moveMessages(ids, to, label = T.moved(ids.length, folderName(to))) {
  if (!ids.length || (S.folder && to.folderID === S.folder.folderID)) return;
  const from = S.folder;
  list.markLeaving(ids, true);
  if (S.open && ids.includes(S.open.messageID)) closeReader(true);
  try {
    const r = await api.call('messages.move', { folderID: to.folderID, messageIDs: ids });
    toast(label, { undo: async () => {
      try { if (from) await api.call('messages.move', { folderID: from.folderID, messageIDs: r.messageIDs }); toast(T.undone); await afterChange(); } catch (e) { fail(e); }
    } });
    await afterChange();
  } catch (e) { list.markLeaving(ids, false); fail(e); }
}

/** @param {string[]} ids */
async function deleteMessages(ids) {
  if (!ids.length) return;
  const trash = special('\\Trash');
  if (trash && S.folder?.folderID !== trash.folderID) return moveMessages(ids, trash, T.deleted(ids.length));
  if (!await confirm(T.del, T.confirmRemove(ids.length), T.del)) return;
  list.markLeaving(ids, true);
  try { await api.call('messages.remove', { messageIDs: ids }); toast(T.deletedForever(ids.length)); closeReader(true); await afterChange(); } catch (e) { list.markLeaving(ids, false); fail(e); }
}

/** @param {string[]} ids */
async function archive(ids) {
  const a = special('\\Archive');
  if (a) await moveMessages(ids, a);
}

/**
 * Toggles (or sets) a flag on messages, at once on screen, undone if the
 * server refuses.
 * @param {string[]} ids @param {string} flag @param {boolean} [on]
 */
async function flagMessages(ids, flag, on) {
  if (!ids.length) return;
  const first = list.at(list.indexOf(ids[0]));
  const set = on ?? !(first?.flags.includes(flag));
  /** @type {Map<string, string[]>} */
  const before = new Map();
  list.patch(ids, (m) => { before.set(m.messageID, m.flags); m.flags = set ? [...new Set([...m.flags, flag])] : m.flags.filter((f) => f !== flag); });
  if (S.open && ids.includes(S.open.messageID)) { S.open.meta.flags = set ? [...S.open.meta.flags, flag] : S.open.meta.flags.filter((f) => f !== flag); }
  try {
    await api.call('messages.flag', { action: set ? 'add' : 'remove', messageIDs: ids, flags: [flag] });
    if (flag === 'seen') loadFolders();
  } catch (e) {
    list.patch(ids, (m) => { m.flags = before.get(m.messageID) || m.flags; });
    fail(e);
  }
}

async function afterChange() {
  await Promise.all([loadFolders(), list.refresh()]);
}

/** @param {{mode?: 'new'|'reply'|'replyAll'|'forward', to?: string[]}} how */
function compose(how) {
  const host = $('#compose-host');
  const un = pushEscape(() => { if (host.hidden) return false; /** @type {HTMLElement | null} */ (host.querySelector('#c-close'))?.click(); return true; });
  return openCompose(host, composeEnv(un), { ...how, source: how.mode && how.mode !== 'new' ? S.open || undefined : undefined, me: S.meta?.user.address });
}

/** @param {() => void} un */
function composeEnv(un) {
  return {
    toast, undoSeconds: Number(S.prefs.undoSeconds || 0),
    identity: () => api.call('settings.identity', {}),
    identities: async () => (await api.call('identities.list', {})).identities || [],
    aliases: async () => (await api.call('aliases', {})).aliases.map((/** @type {{address: string}} */ a) => a.address),
    suggest: suggest,
    sent: () => { setTimeout(() => afterChange(), 300); },
    closed: un,
    perf: mark,
  };
}

/**
 * Completions for a To/Cc/Bcc field: the server's, from the contacts and
 * the recent recipients it keeps (contacts.suggest).
 * @param {string} q
 */
async function suggest(q) {
  const r = await api.call('contacts.suggest', { prefix: q, limit: 8 });
  return r.suggestions.map((/** @type {{display: string, address: string}} */ c) => c.display || c.address);
}

// ---------- pages ----------

/** @param {'contacts'|'settings'|null} which */
function showPage(which) {
  el.page.hidden = !which;
  el.main.hidden = !!which;
  if (!which) return;
  const back = () => { showPage(null); list.render(true); };
  pushEscape(() => { if (el.page.hidden) return false; back(); return true; });
  const ctx = { toast, fail, back, prefs: S.prefs, savePref, applyPrefs, compose: (/** @type {string} */ to) => { back(); compose({ to: [to] }); } };
  if (which === 'contacts') { showContacts(el.page, ctx); } else showSettings(el.page, ctx);
}

async function doLogout() {
  if (S.es) S.es.close();
  S.es = null;
  try { await api.logout(); } catch { /* the cookie is cleared either way */ }
  localStorage.removeItem('basalt.compose');
  location.hash = '';
  location.reload();
}

// ---------- new mail ----------

/** @param {number} n */
function notifyNew(n) {
  if (S.prefs.notify === '1' && 'Notification' in window && Notification.permission === 'granted' && document.hidden) {
    new Notification(T.newMail(n), { body: T.title(S.inboxUnread + n, 'Inbox'), tag: 'basalt-new' });
  }
}

let changeTimer = 0;
function startEvents() {
  S.es = api.events((ev) => {
    clearTimeout(changeTimer);
    changeTimer = window.setTimeout(async () => {
      await loadFolders().catch(() => {});
      const cur = S.folder;
      if (cur) {
        const fresh = S.folders.find((f) => f.folderID === cur.folderID);
        if (fresh) S.folder = fresh;
      }
      if (ev.resync || !cur || S.query !== null || (ev.folderIDs || []).includes(cur.folderID)) await list.refresh();
      mark('change-applied');
    }, 100);
  }, () => { S.es = null; api.call('meta').then(() => startEvents()).catch(() => {}); });
}

// ---------- keyboard ----------

let gPending = 0;
/** @param {KeyboardEvent} e */
function onKey(e) {
  if (e.key === 'Escape') {
    if (document.querySelector('dialog[open]')) return;
    if (escape()) { e.preventDefault(); return; }
    if (closeReader(false)) { e.preventDefault(); return; }
    return;
  }
  const t = /** @type {HTMLElement} */ (e.target);
  // Never while typing.
  if (t.closest('input, textarea, select, [contenteditable="true"], dialog[open]') || e.ctrlKey || e.metaKey || e.altKey) return;
  if (!$('#login').hidden || el.page?.hidden === false) return;
  const k = e.key;
  if (gPending) {
    clearTimeout(gPending); gPending = 0;
    if (k === 'i') { e.preventDefault(); goInbox(); }
    return;
  }
  /** @type {Record<string, () => void>} */
  const keys = {
    j: () => list.step(1, document.body.classList.contains('reading') && !matchMedia('(max-width: 699px)').matches),
    k: () => list.step(-1, document.body.classList.contains('reading') && !matchMedia('(max-width: 699px)').matches),
    o: () => list.step(0, true), Enter: () => list.step(0, true),
    u: () => { closeReader(false); },
    r: () => { if (S.open) compose({ mode: 'reply' }); },
    a: () => { if (S.open) compose({ mode: 'replyAll' }); },
    f: () => { if (S.open) compose({ mode: 'forward' }); },
    c: () => compose({}),
    e: () => archive(list.targets()),
    '#': () => deleteMessages(list.targets()),
    s: () => flagMessages(list.targets(), 'flagged'),
    x: () => { const m = list.current(); if (m) list.toggleSelect(m.messageID); },
    '/': () => { $('#search').focus(); },
    g: () => { gPending = window.setTimeout(() => { gPending = 0; }, 1500); },
    '?': () => { keysOverlay(); },
  };
  const f = keys[k];
  if (f) { e.preventDefault(); f(); }
}

// ---------- start ----------

async function boot() {
  installIcons();
  try { S.prefs = JSON.parse(localStorage.getItem('basalt.prefs') || '{}'); } catch { S.prefs = {}; }
  applyPrefs();
  document.addEventListener('keydown', onKey);
  api.onReauth(async () => {
    if (S.es) { S.es.close(); S.es = null; }
    await showLogin(T.reauth);
    startEvents();
  });
  // The site's login (templates/login.go) hands its new session over:
  // the cookie, and the CSRF token in the fragment, never sent anywhere.
  const handed = /^#csrf=([\w-]+)$/.exec(location.hash);
  if (handed) { api.setCSRF(handed[1]); history.replaceState(null, '', location.pathname + location.search); }
  if (!api.csrf()) await showLogin();
  // What the first screen needs, asked at once.
  const [meta, cfg] = await Promise.all([api.call('meta'), api.call('config.load').catch(() => ({ config: {} })), loadFoldersData()]);
  S.meta = meta;
  if (!el.main) buildShell();
  S.prefs = { ...S.prefs, ...cfg.config };
  localStorage.setItem('basalt.prefs', JSON.stringify(S.prefs));
  applyPrefs();
  if (SORTS.includes(S.prefs.sort)) S.sort = S.prefs.sort;
  if (S.prefs.desc) S.desc = S.prefs.desc === '1';
  el.sortDir.setAttribute('aria-pressed', String(S.desc));
  /** @type {HTMLSelectElement} */ (el.sort).value = S.sort;
  S.threads = S.prefs.threads === '1';
  el.threadsBtn.setAttribute('aria-pressed', String(S.threads));
  drawFolders();
  updateTitle();
  const inbox = special('\\Inbox') || S.folders[0];
  if (inbox) await selectFolder(inbox);
  mark('inbox-rendered');
  if (performance.getEntriesByName('login-start').length) performance.measure('login-inbox', 'login-start', 'inbox-rendered');
  startEvents();
  const d = kept();
  if (d) { toast(T.resumeDraft); const host = $('#compose-host'); openCompose(host, composeEnv(pushEscape(() => false)), { draft: d }); }
  /** @type {any} */ (window).basalt = { list, ready: true };
}

boot().catch((e) => { console.error(e); fail(e); });
