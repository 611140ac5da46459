// Compose: recipients with autocomplete, plain text or a small rich
// editor of our own, attachments (picker, drop, paste), drafts saved as
// you type (on the server, and locally so an ended session loses
// nothing), undo send and send later.
import { h, icon, ibtn, clear } from './dom.js';
import { T, size, longDate } from './strings.js';
import * as api from './api.js';
import { addrs } from './reader.js';

const LOCAL = 'basalt.compose';
const ADDR = /^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[^\s@<>(),;:"]+$/;

/**
 * @typedef {{composeID: number, from: string, to: string[], cc: string[], bcc: string[], subject: string, rich: boolean, text: string, html: string,
 *   inReplyTo?: string, draftID?: string, identity?: string, attachments: {attachmentID: number, name: string, type: string, size: number}[],
 *   attachParts: {messageID: string, part: string, name?: string}[]}} Draft
 * @typedef {{id: string, name: string, address: string, signatureText: string, signatureHTML: string, default: boolean}} Identity
 * @typedef {{toast: (msg: string, o?: {undo?: () => void, seconds?: number, error?: boolean}) => {close: () => void, update: (s: string) => void},
 *   identity: () => Promise<{displayName: string, signature: string}>, aliases: () => Promise<string[]>,
 *   identities: () => Promise<Identity[]>, suggest: (q: string) => Promise<string[]>,
 *   sent: (to: string[]) => void, undoSeconds: number, closed: () => void, perf: (n: string) => void}} Env
 */

/** @returns {Draft} */
function blank() {
  return { composeID: 0, from: '', to: [], cc: [], bcc: [], subject: '', rich: false, text: '', html: '', attachments: [], attachParts: [] };
}

/** @returns {Draft | null} a compose kept by an earlier page (an ended session, a reload) */
export function kept() {
  try { const d = JSON.parse(localStorage.getItem(LOCAL) || 'null'); return d && d.composeID !== undefined ? d : null; } catch { return null; }
}

/**
 * A recipients field: chips for each address and an input with
 * suggestions as a listbox.
 * @param {string} id @param {string} label @param {string[]} init @param {(q: string) => Promise<string[]>} suggest @param {() => void} changed
 */
function recipients(id, label, init, suggest, changed) {
  /** @type {string[]} */
  const list = [...init];
  const chips = h('span', { class: 'chips' });
  const input = h('input', { id, type: 'text', autocomplete: 'off', role: 'combobox', 'aria-expanded': 'false', 'aria-autocomplete': 'list', 'aria-controls': id + '-list' });
  const box = h('ul', { class: 'suggest', id: id + '-list', role: 'listbox', hidden: true });
  let active = -1;
  const draw = () => {
    clear(chips);
    list.forEach((a, i) => chips.append(h('span', { class: 'chip' + (ADDR.test(a) ? '' : ' bad') }, a,
      h('button', { type: 'button', class: 'chip-x', 'aria-label': T.removeAttachment(a), onclick: () => { list.splice(i, 1); draw(); changed(); } }, icon('close')))));
  };
  /** @param {string} v */
  const add = (v) => {
    for (const part of v.split(/[,;\s]+/)) {
      const a = part.trim().replace(/^.*<([^>]+)>$/, '$1');
      if (a && !list.includes(a)) list.push(a);
    }
    input.value = '';
    close();
    draw();
    changed();
  };
  const close = () => { box.hidden = true; input.setAttribute('aria-expanded', 'false'); active = -1; };
  input.addEventListener('input', async () => {
    const q = input.value.trim();
    if (q.length < 1) return close();
    const got = (await suggest(q).catch(() => [])).filter((a) => !list.includes(a)).slice(0, 8);
    clear(box);
    got.forEach((a, i) => box.append(h('li', { role: 'option', id: `${id}-o${i}`, 'aria-selected': 'false', onmousedown: (/** @type {Event} */ e) => { e.preventDefault(); add(a); }, text: a })));
    box.hidden = got.length === 0;
    input.setAttribute('aria-expanded', String(!box.hidden));
  });
  input.addEventListener('keydown', (e) => {
    const opts = [...box.querySelectorAll('li')];
    if ((e.key === 'ArrowDown' || e.key === 'ArrowUp') && !box.hidden) {
      e.preventDefault();
      active = (active + (e.key === 'ArrowDown' ? 1 : -1) + opts.length) % opts.length;
      opts.forEach((o, i) => o.setAttribute('aria-selected', String(i === active)));
      input.setAttribute('aria-activedescendant', opts[active].id);
    } else if (e.key === 'Enter' || e.key === ',' || e.key === ';' || (e.key === 'Tab' && input.value.trim())) {
      if (!input.value.trim() && e.key !== 'Enter') return;
      if (e.key === 'Enter' && !input.value.trim()) return;
      e.preventDefault();
      add(active >= 0 && !box.hidden ? opts[active].textContent || '' : input.value);
    } else if (e.key === 'Backspace' && !input.value && list.length) {
      list.pop(); draw(); changed();
    } else if (e.key === 'Escape' && !box.hidden) {
      e.stopPropagation(); close();
    }
  });
  input.addEventListener('blur', () => { if (input.value.trim()) add(input.value); else close(); });
  draw();
  const el = h('div', { class: 'field rcpt' }, h('label', { for: id, text: label }), h('div', { class: 'rcpt-box', onclick: () => input.focus() }, chips, input), box);
  return { el, list, flush: () => { if (input.value.trim()) add(input.value); } };
}

/**
 * The rich editor's toolbar: each button applies one format to the
 * selection inside the editor.
 * @param {HTMLElement} ed
 */
function toolbar(ed) {
  /** @param {string} cmd @param {string} [arg] */
  const exec = (cmd, arg) => { ed.focus(); document.execCommand(cmd, false, arg); ed.dispatchEvent(new Event('input')); };
  const linkBox = h('span', { class: 'linkbox', hidden: true });
  const linkIn = h('input', { type: 'url', placeholder: 'https://', 'aria-label': T.linkPrompt });
  /** @type {Range | null} */
  let saved = null;
  const apply = () => {
    const v = linkIn.value.trim();
    linkBox.hidden = true;
    if (!/^(https?:|mailto:)/i.test(v) || !saved) return;
    // The selection becomes the link's text (the address, when nothing was selected).
    if (!ed.contains(saved.commonAncestorContainer)) return;
    const a = h('a', { href: v });
    if (saved.collapsed) a.textContent = v; else a.append(saved.extractContents());
    saved.insertNode(a);
    ed.focus();
    const sel = getSelection();
    sel?.removeAllRanges(); sel?.selectAllChildren(a); sel?.collapseToEnd();
    ed.dispatchEvent(new Event('input'));
  };
  linkIn.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); apply(); } if (e.key === 'Escape') { e.stopPropagation(); linkBox.hidden = true; ed.focus(); } });
  linkBox.append(linkIn, h('button', { type: 'button', class: 'btn', onclick: apply, text: T.link }));
  /** @param {string} label @param {string | Node} face @param {() => void} f */
  const b = (label, face, f) => h('button', { type: 'button', class: 'btn fmt', title: label, 'aria-label': label, onmousedown: (/** @type {Event} */ e) => e.preventDefault(), onclick: f }, face);
  return h('div', { class: 'toolbar fmtbar', role: 'toolbar', 'aria-label': T.richText },
    b(T.bold, 'B', () => exec('bold')), b(T.italic, 'I', () => exec('italic')),
    b(T.bullets, '•', () => exec('insertUnorderedList')), b(T.numbers, '1.', () => exec('insertOrderedList')),
    b(T.quote, '❝', () => exec('formatBlock', 'blockquote')),
    b(T.link, icon('link'), () => { const s = getSelection(); saved = s && s.rangeCount ? s.getRangeAt(0).cloneRange() : null; linkBox.hidden = false; linkIn.value = ''; linkIn.focus(); }),
    linkBox);
}

/** @param {string} text @returns {DocumentFragment} paragraphs for the rich editor */
function textToNodes(text) {
  const f = document.createDocumentFragment();
  const blocks = text.split('\n');
  /** @type {HTMLElement | null} */
  let quote = null;
  for (const line of blocks) {
    if (line.startsWith('>')) {
      quote ??= f.appendChild(h('blockquote'));
      quote.append(h('div', {}, line.replace(/^> ?/, '') || h('br')));
    } else {
      quote = null;
      f.append(h('div', {}, line || h('br')));
    }
  }
  return f;
}

/**
 * Opens the compose panel.
 * @param {HTMLElement} host
 * @param {Env} env
 * @param {{mode?: 'new'|'reply'|'replyAll'|'forward', source?: import('./reader.js').Loaded, me?: string, draft?: Draft, to?: string[]}} how
 */
export async function openCompose(host, env, how) {
  const d = how.draft || blank();
  const ident = await env.identity().catch(() => ({ displayName: '', signature: '' }));
  const [aliases, idents] = await Promise.all([env.aliases().catch(() => []), env.identities().catch(() => [])]);
  const ids = idents.length ? idents : null;
  const defIdent = ids ? ids.find((x) => x.default) || ids[0] : null;
  if (defIdent && !d.identity) d.identity = defIdent.id;
  if (!how.draft) {
    d.from = defIdent ? defIdent.address : aliases[0] || '';
    const sig = defIdent?.signatureText || ident.signature;
    const src = how.source;
    if (how.to) d.to = how.to;
    if (src) {
      const m = src.meta;
      const subj = m.subject || '';
      const who = m.from[0] ? addrs([m.from[0]]) : '';
      const quoted = (src.body.text || '').replace(/\s+$/, '').split('\n').map((l) => '> ' + l).join('\n');
      if (how.mode === 'forward') {
        d.subject = /^fwd?:/i.test(subj) ? subj : 'Fwd: ' + subj;
        d.text = `\n\n${T.fwdHeader}\n${T.from}: ${who}\n${T.date}: ${longDate(m.utc)}\n${T.subject}: ${subj}\n${T.to}: ${addrs(m.to)}\n\n${src.body.text || ''}`;
        d.attachParts = (src.attachments || []).filter((a) => !a.inline).map((a) => ({ messageID: src.messageID, part: a.part, name: a.name }));
      } else {
        d.subject = /^re:/i.test(subj) ? subj : 'Re: ' + subj;
        d.inReplyTo = src.messageID;
        const replyTo = src.header.find((x) => x.name.toLowerCase() === 'reply-to')?.value;
        d.to = replyTo ? [replyTo.replace(/^.*<([^>]+)>.*$/, '$1')] : m.from.map((a) => a.address);
        if (how.mode === 'replyAll') {
          const me = (how.me || '').toLowerCase();
          const others = [...m.to, ...m.cc].map((a) => a.address).filter((a) => a.toLowerCase() !== me && !d.to.includes(a));
          d.cc = others;
        }
        d.text = `\n\n${T.wrote(longDate(m.utc), who)}\n${quoted}`;
      }
    }
    if (sig) d.text = (d.text.startsWith('\n') ? '' : '\n\n') + d.text.replace(/^\n\n/, '\n\n') + `\n\n-- \n${sig}`;
    if (!d.text.startsWith('\n')) d.text = '\n\n' + d.text;
  }

  clear(host);
  host.hidden = false;
  const status = h('span', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const err = h('p', { class: 'error', role: 'alert', id: 'compose-error', hidden: true });
  const changed = () => { keepLocal(); schedule(); };
  const suggest = env.suggest;
  const to = recipients('c-to', T.to, d.to, suggest, changed);
  const cc = recipients('c-cc', T.cc, d.cc, suggest, changed);
  const bcc = recipients('c-bcc', T.bcc, d.bcc, suggest, changed);
  // With identities, each has its own name, address and signature; else the addresses the user may send from.
  const fromSel = ids
    ? h('select', { id: 'c-from', onchange: () => changed() }, ...ids.map((x) => h('option', { value: x.id, text: x.name ? `${x.name} <${x.address}>` : x.address, selected: x.id === d.identity })))
    : h('select', { id: 'c-from', onchange: () => changed() }, ...aliases.map((a) => h('option', { value: a, text: ident.displayName ? `${ident.displayName} <${a}>` : a, selected: a === d.from })));
  const subject = h('input', { id: 'c-subject', type: 'text', value: d.subject, oninput: changed });
  const area = h('textarea', { id: 'c-body', 'aria-label': T.body, value: d.text, oninput: changed });
  const ed = h('div', { id: 'c-editor', class: 'editor', contenteditable: 'true', role: 'textbox', 'aria-multiline': 'true', 'aria-label': T.body, oninput: changed });
  const bar = toolbar(ed);
  const modeBtn = h('button', { type: 'button', class: 'btn', id: 'c-mode', 'aria-pressed': String(d.rich), text: d.rich ? T.plainText : T.richText });
  const setRich = (/** @type {boolean} */ rich) => {
    if (rich && !d.rich) { clear(ed); ed.append(textToNodes(area.value)); }
    if (!rich && d.rich) area.value = ed.innerText;
    d.rich = rich;
    area.hidden = rich; ed.hidden = !rich; bar.hidden = !rich;
    modeBtn.textContent = rich ? T.plainText : T.richText;
    modeBtn.setAttribute('aria-pressed', String(rich));
  };
  modeBtn.addEventListener('click', () => { setRich(!d.rich); changed(); });
  if (d.rich) { ed.append(textToNodes(d.text)); }
  area.hidden = d.rich; ed.hidden = !d.rich; bar.hidden = !d.rich;

  const files = h('ul', { class: 'files', 'aria-label': T.attach });
  const drawFiles = () => {
    clear(files);
    for (const a of d.attachments) {
      files.append(h('li', { class: 'chip' }, icon('clip'), `${a.name} (${size(a.size)})`,
        h('button', { type: 'button', class: 'chip-x', 'aria-label': T.removeAttachment(a.name), onclick: async () => {
          d.attachments = d.attachments.filter((x) => x !== a); drawFiles(); changed();
          try { await api.call('attachments.remove', { attachmentID: a.attachmentID }); } catch (e) { showErr(e); }
        } }, icon('close'))));
    }
    for (const p of d.attachParts) {
      files.append(h('li', { class: 'chip' }, icon('clip'), p.name || p.part,
        h('button', { type: 'button', class: 'chip-x', 'aria-label': T.removeAttachment(p.name || p.part), onclick: () => { d.attachParts = d.attachParts.filter((x) => x !== p); drawFiles(); changed(); } }, icon('close'))));
    }
  };
  const picker = h('input', { type: 'file', multiple: true, id: 'c-files', class: 'visually-hidden', onchange: () => { addFiles([...(picker.files || [])]); picker.value = ''; } });

  /** @type {Promise<number> | null} */
  let opening = null;
  // One server-side compose, however many uploads and saves ask for it at once.
  const ensureCompose = () => {
    if (d.composeID) return Promise.resolve(d.composeID);
    opening ??= api.call('messages.compose', d.draftID ? { draftID: d.draftID } : {}).then((r) => {
      d.composeID = r.composeID;
      if (r.attachments?.length && !d.attachments.length) d.attachments = r.attachments;
      return d.composeID;
    }).finally(() => { opening = null; });
    return opening;
  };
  /** @param {File[]} list */
  const addFiles = async (list) => {
    if (!list.length) return;
    status.textContent = T.uploading(list.map((f) => f.name || 'image').join(', '));
    try {
      const id = await ensureCompose();
      const r = await api.upload(id, list);
      // The answer names this upload's files; others may have landed meanwhile.
      const got = /** @type {Draft['attachments']} */ (r.attachments || []);
      d.attachments = [...d.attachments.filter((a) => !got.some((x) => x.attachmentID === a.attachmentID)), ...got];
      drawFiles();
      status.textContent = '';
      changed();
    } catch (e) { status.textContent = ''; showErr(e); }
  };
  /** @param {any} e */
  const showErr = (e) => {
    err.textContent = e instanceof api.ApiError ? e.words : String(e?.message || e);
    err.hidden = false;
  };

  /** @type {HTMLInputElement | null} */
  let when = null;
  const panel = h('section', { class: 'compose', role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': 'compose-title' },
    h('header', { class: 'compose-head' }, h('h2', { id: 'compose-title', text: d.subject || T.newMessage }),
      ibtn('close', T.close, () => close(true), { id: 'c-close' })),
    err,
    h('div', { class: 'field' }, h('label', { for: 'c-from', text: T.from }), fromSel),
    to.el, cc.el, bcc.el,
    h('div', { class: 'field' }, h('label', { for: 'c-subject', text: T.subject }), subject),
    bar, area, ed, files,
    h('footer', { class: 'compose-foot' },
      h('button', { type: 'button', class: 'btn primary', id: 'c-send', onclick: () => send() }, icon('sent'), h('span', { text: T.send })),
      sendLaterUI(),
      h('label', { class: 'btn', for: 'c-files' }, icon('clip'), h('span', { text: T.attach })), picker,
      modeBtn,
      h('button', { type: 'button', class: 'btn', id: 'c-discard', onclick: () => discard(), text: T.discard }),
      status));
  host.append(panel);
  drawFiles();

  // Drop and paste: files become attachments.
  panel.addEventListener('dragover', (e) => { if (e.dataTransfer?.types.includes('Files')) { e.preventDefault(); panel.classList.add('dropping'); } });
  panel.addEventListener('dragleave', () => panel.classList.remove('dropping'));
  panel.addEventListener('drop', (e) => {
    panel.classList.remove('dropping');
    if (!e.dataTransfer?.files.length) return;
    e.preventDefault();
    addFiles([...e.dataTransfer.files]);
  });
  panel.addEventListener('paste', (e) => {
    const fl = [...(e.clipboardData?.files || [])].filter((f) => f.type.startsWith('image/'));
    if (fl.length) { e.preventDefault(); addFiles(fl); }
  });

  function sendLaterUI() {
    when = h('input', { type: 'datetime-local', id: 'c-when', 'aria-label': T.sendAt });
    return h('span', { class: 'later' }, when, h('button', { type: 'button', class: 'btn', id: 'c-later', onclick: () => send(true), text: T.sendLater }));
  }

  const collect = () => {
    to.flush(); cc.flush(); bcc.flush();
    d.to = [...to.list]; d.cc = [...cc.list]; d.bcc = [...bcc.list];
    if (ids) { d.identity = fromSel.value; d.from = ids.find((x) => x.id === d.identity)?.address || ''; } else d.from = fromSel.value;
    d.subject = subject.value;
    if (d.rich) { d.html = ed.innerHTML; d.text = ed.innerText; } else { d.text = area.value; d.html = ''; }
    return d;
  };
  /** @param {boolean} [sending] the identity is messages.send's alone */
  const params = (sending) => {
    collect();
    /** @type {Record<string, any>} */
    const p = { composeID: d.composeID, to: d.to, cc: d.cc, bcc: d.bcc, subject: d.subject, body: d.rich ? { html: d.html, text: d.text } : { text: d.text },
      attachments: d.attachments.map((a) => a.attachmentID), attachParts: d.attachParts.map((a) => ({ messageID: a.messageID, part: a.part })) };
    if (sending && ids && d.identity) p.identity = d.identity; else if (d.from) p.from = d.from;
    if (d.inReplyTo) p.inReplyTo = d.inReplyTo;
    return p;
  };
  const keepLocal = () => { try { localStorage.setItem(LOCAL, JSON.stringify(collect())); } catch { /* storage full: the server's draft remains */ } };
  let timer = 0;
  let saving = Promise.resolve();
  const schedule = () => { clearTimeout(timer); timer = window.setTimeout(() => { saving = save(); }, 2000); };
  const save = async () => {
    status.textContent = T.saving;
    try {
      await ensureCompose();
      const r = await api.call('messages.save', params());
      d.draftID = r.messageID;
      keepLocal();
      status.textContent = T.saved;
    } catch (e) { status.textContent = ''; showErr(e); }
  };
  const close = async (/** @type {boolean} */ keepDraft) => {
    clearTimeout(timer);
    if (keepDraft && (collect().to.length || d.subject || d.text.trim() || d.attachments.length)) await save();
    localStorage.removeItem(LOCAL);
    host.hidden = true;
    clear(host);
    env.closed();
  };
  const discard = async () => {
    clearTimeout(timer);
    localStorage.removeItem(LOCAL);
    host.hidden = true; clear(host); env.closed();
    if (d.draftID) api.call('messages.remove', { messageIDs: [d.draftID] }).catch(() => {});
  };
  /** @param {boolean} [later] */
  const send = async (later) => {
    collect();
    err.hidden = true;
    const all = [...d.to, ...d.cc, ...d.bcc];
    if (!all.length) { showErr(new Error(T.noRecipients)); to.el.querySelector('input')?.focus(); return; }
    const bad = all.find((a) => !ADDR.test(a));
    if (bad) { showErr(new Error(T.badAddress(bad))); return; }
    clearTimeout(timer);
    await saving;
    try { await ensureCompose(); } catch (e) { showErr(e); return; }
    const p = params(true);
    const snapshot = JSON.parse(JSON.stringify(d));
    host.hidden = true;
    if (later && when?.value) {
      const at = new Date(when.value).getTime();
      p.sendAt = Math.floor(at / 1000);
      try {
        await api.call('messages.send', p);
        localStorage.removeItem(LOCAL);
        clear(host); env.closed();
        env.toast(T.scheduled(new Date(at).toLocaleString()));
      } catch (e) { host.hidden = false; showErr(e); }
      return;
    }
    // The server holds the message in its outbound queue until the undo
    // time is over (its default unless the user chose one); unsend takes
    // it back to Drafts until then.
    if (env.undoSeconds) p.delay = env.undoSeconds;
    try {
      const r = await api.call('messages.send', p);
      localStorage.removeItem(LOCAL);
      clear(host); env.closed(); env.sent(all);
      if (r.sendID) {
        undoToast(async () => {
          try {
            const u = await api.call('messages.unsend', { sendID: r.sendID });
            openCompose(host, env, { draft: { ...snapshot, composeID: 0, draftID: u.draftID } });
          } catch (e) { env.toast(e instanceof api.ApiError ? e.words : T.failed, { error: true }); }
        }, Math.round(r.sendAt - Date.now() / 1000));
      } else if (r.failed?.length) {
        // No undo time: it left at once, and some recipients refused it.
        env.toast(r.failed.map((/** @type {{address:string,reason:string}} */ f) => T.recipientRefused(f.address, f.reason)).join('; '), { error: true });
      } else env.toast(T.sent);
    } catch (e) { host.hidden = false; showErr(e); }
  };
  /** The countdown to the queue's send time, with its undo. @param {() => void} undo @param {number} secs */
  const undoToast = (undo, secs) => {
    let left = Math.max(1, secs);
    const t = env.toast(T.sentIn(left), { undo: () => { clearInterval(iv); undo(); env.toast(T.unsent); }, seconds: left + 1 });
    const iv = setInterval(() => {
      left--;
      if (left > 0) { t.update(T.sentIn(left)); return; }
      clearInterval(iv);
      t.close();
      env.toast(T.sent);
    }, 1000);
  };

  panel.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); send(); }
  });
  keepLocal();
  (d.to.length ? (d.rich ? ed : area) : /** @type {HTMLElement} */ (to.el.querySelector('input'))).focus();
  if (!d.to.length) return;
  if (!d.rich) { area.setSelectionRange(0, 0); area.scrollTop = 0; }
}
