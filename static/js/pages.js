// Pages beside the mail: contacts, settings, the sharing dialog and the
// shortcuts overlay.
import { h, clear, ibtn, icon } from './dom.js';
import { T } from './strings.js';
import * as api from './api.js';
import { dialog, confirm } from './ui.js';

/**
 * @typedef {{toast: typeof import('./ui.js').toast, fail: (e: any) => void, back: () => void, prefs: Record<string, string>,
 *   savePref: (k: string, v: string) => void, applyPrefs: () => void, compose: (to: string) => void}} Ctx
 * @typedef {{contactID: number, name: string, emails?: {type?: string, value: string}[], phones?: {type?: string, value: string}[], organization?: string, title?: string, notes?: string}} Contact
 */

/** @param {string} title @param {Ctx} ctx */
function pageHead(title, ctx) {
  return h('header', { class: 'page-head' }, ibtn('back', T.back, ctx.back, { id: 'page-back' }), h('h1', { id: 'page-title', text: title }));
}

/** @param {string} id @param {string} label @param {HTMLElement} input */
const field = (id, label, input) => { input.id = id; return h('div', { class: 'field' }, h('label', { for: id, text: label }), input); };

/** @param {HTMLElement} page @param {Ctx} ctx */
export async function showContacts(page, ctx) {
  clear(page);
  const listEl = h('ul', { class: 'contacts', id: 'contact-list', 'aria-label': T.contacts });
  const form = h('div', { class: 'contact-edit', id: 'contact-edit' });
  const file = h('input', { type: 'file', accept: '.vcf,text/vcard', class: 'visually-hidden', id: 'vcard-file' });
  page.append(pageHead(T.contacts, ctx),
    h('div', { class: 'toolbar' },
      h('button', { type: 'button', class: 'btn primary', id: 'contact-new', onclick: () => edit(null) }, icon('plus'), h('span', { text: T.newContact })),
      h('label', { class: 'btn', for: 'vcard-file', text: T.importVCard }), file,
      h('button', { type: 'button', class: 'btn', id: 'vcard-export', onclick: () => exportAll(), text: T.exportVCard })),
    h('div', { class: 'split' }, listEl, form));
  file.addEventListener('change', async () => {
    const f = file.files?.[0];
    if (!f) return;
    try { const r = await api.call('contacts.import', { vcard: await f.text() }); ctx.toast(T.imported(r.contactIDs.length, r.skipped)); await load(); } catch (e) { ctx.fail(e); }
    file.value = '';
  });
  /** @type {Contact[]} */
  let contacts = [];
  const load = async () => {
    const r = await api.call('contacts.list', {});
    contacts = r.contacts;
    clear(listEl);
    if (!contacts.length) listEl.append(h('li', { class: 'muted', text: T.noContacts }));
    for (const c of contacts) {
      listEl.append(h('li', {}, h('button', { type: 'button', class: 'contact', onclick: () => edit(c), dataset: { id: String(c.contactID) } },
        h('span', { class: 'who', text: c.name }), h('span', { class: 'muted', text: c.emails?.[0]?.value || '' }))));
    }
  };
  const exportAll = async () => {
    try {
      const r = await api.call('contacts.export', {});
      const url = URL.createObjectURL(new Blob([r.vcard], { type: 'text/vcard' }));
      const a = h('a', { href: url, download: 'contacts.vcf' });
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (e) { ctx.fail(e); }
  };
  /** @param {Contact | null} c */
  const edit = (c) => {
    clear(form);
    const name = h('input', { type: 'text', required: true, value: c?.name || '', autocomplete: 'off' });
    const emails = h('textarea', { rows: 2, value: (c?.emails || []).map((e) => e.value).join('\n') });
    const phones = h('textarea', { rows: 2, value: (c?.phones || []).map((e) => e.value).join('\n') });
    const org = h('input', { type: 'text', value: c?.organization || '' });
    const title = h('input', { type: 'text', value: c?.title || '' });
    const notes = h('textarea', { rows: 3, value: c?.notes || '' });
    const err = h('p', { class: 'error', role: 'alert', hidden: true });
    const f = h('form', { 'aria-label': c ? c.name : T.newContact },
      h('h2', { text: c ? c.name : T.newContact }), err,
      field('ct-name', T.name, name), field('ct-emails', T.emails, emails), field('ct-phones', T.phones, phones),
      field('ct-org', T.organization, org), field('ct-title', T.jobTitle, title), field('ct-notes', T.notes, notes),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'btn primary', id: 'ct-save', text: T.save }),
        c?.emails?.[0] ? h('button', { type: 'button', class: 'btn', onclick: () => ctx.compose(/** @type {any} */ (c).emails[0].value), text: T.compose }) : null,
        c ? h('button', { type: 'button', class: 'btn danger', id: 'ct-delete', onclick: async () => {
          if (!await confirm(T.remove, T.confirmContact(c.name), T.remove)) return;
          try { await api.call('contacts.remove', { contactIDs: [c.contactID] }); clear(form); await load(); } catch (e) { ctx.fail(e); }
        }, text: T.remove }) : null));
    f.addEventListener('submit', async (e) => {
      e.preventDefault();
      const lines = (/** @type {HTMLTextAreaElement} */ t) => t.value.split('\n').map((s) => s.trim()).filter(Boolean).map((value) => ({ value }));
      const p = { name: name.value.trim(), emails: lines(emails), phones: lines(phones), organization: org.value, title: title.value, notes: notes.value };
      try {
        if (c) await api.call('contacts.edit', { contactID: c.contactID, ...p }); else await api.call('contacts.add', p);
        ctx.toast(T.contactSaved);
        await load();
      } catch (er) { err.textContent = er instanceof api.ApiError ? er.words : T.failed; err.hidden = false; }
    });
    form.append(f);
    name.focus();
  };
  try { await load(); } catch (e) { ctx.fail(e); }
  /** @type {HTMLElement} */ (page.querySelector('#page-back')).focus();
}

/** @param {HTMLElement} page @param {Ctx} ctx */
export async function showSettings(page, ctx) {
  clear(page);
  page.append(pageHead(T.settings, ctx));
  const grid = h('div', { class: 'settings' });
  page.append(grid);
  /** @param {string} title @param {string} id @param {(HTMLElement|null)[]} kids @param {(() => Promise<void>) | null} [save] */
  const section = (title, id, kids, save) => {
    const err = h('p', { class: 'error', role: 'alert', hidden: true });
    const f = h('form', { class: 'card', id, 'aria-labelledby': id + '-h' }, h('h2', { id: id + '-h', text: title }), err, ...kids);
    if (save) {
      f.append(h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn primary', id: id + '-save', text: T.save })));
      f.addEventListener('submit', async (e) => {
        e.preventDefault(); err.hidden = true;
        try { await save(); } catch (er) { err.textContent = er instanceof api.ApiError ? er.words : T.failed; err.hidden = false; }
      });
    }
    grid.append(f);
  };
  const [ident, vac] = await Promise.all([api.call('settings.identity', {}).catch(() => ({ displayName: '', signature: '' })), api.call('settings.vacation', {}).catch(() => ({ vacation: { enabled: false } }))]);
  const dn = h('input', { type: 'text', value: ident.displayName });
  const sig = h('textarea', { rows: 3, value: ident.signature });
  section(T.identity, 'set-identity', [field('s-name', T.displayName, dn), field('s-sig', T.signature, sig)], async () => {
    await api.call('settings.identity', { displayName: dn.value, signature: sig.value }); ctx.toast(T.identitySaved);
  });
  const v = vac.vacation || { enabled: false };
  const on = h('input', { type: 'checkbox', id: 'v-on', checked: !!v.enabled });
  const vs = h('input', { type: 'text', value: v.subject || '' });
  const vb = h('textarea', { rows: 4, value: v.body || '' });
  const local = (/** @type {string|undefined} */ iso) => (iso ? new Date(iso).toISOString().slice(0, 10) : '');
  const vstart = h('input', { type: 'date', value: local(v.start) });
  const vend = h('input', { type: 'date', value: local(v.end) });
  section(T.vacation, 'set-vacation', [h('label', { class: 'check' }, on, T.vacationOn), field('v-subject', T.vacSubject, vs), field('v-body', T.vacBody, vb),
    h('div', { class: 'row2' }, field('v-start', T.vacStart, vstart), field('v-end', T.vacEnd, vend))], async () => {
    /** @type {Record<string, any>} */
    const nv = { enabled: on.checked, subject: vs.value, body: vb.value };
    if (vstart.value) nv.start = new Date(vstart.value + 'T00:00:00').toISOString();
    if (vend.value) nv.end = new Date(vend.value + 'T23:59:59').toISOString();
    await api.call('settings.vacation', { vacation: nv }); ctx.toast(T.vacSaved);
  });
  const oldp = h('input', { type: 'password', autocomplete: 'current-password' });
  const newp = h('input', { type: 'password', autocomplete: 'new-password', minlength: '8' });
  section(T.changePassword, 'set-password', [field('p-old', T.oldPassword, oldp), field('p-new', T.newPassword, newp)], async () => {
    const r = await api.call('settings.password', { old: oldp.value, new: newp.value });
    if (r.csrf) api.setCSRF(r.csrf);
    oldp.value = newp.value = '';
    ctx.toast(T.passwordChanged);
  });
  /** @param {string} name @param {string} key @param {[string, string][]} opts */
  const radios = (name, key, opts) => h('fieldset', {}, h('legend', { text: name }),
    ...opts.map(([value, label]) => h('label', { class: 'radio' }, h('input', { type: 'radio', name: key, value, checked: (ctx.prefs[key] || opts[0][0]) === value,
      onchange: () => { ctx.savePref(key, value); ctx.applyPrefs(); } }), label)));
  section(T.appearance, 'set-look', [
    radios(T.theme, 'theme', [['', T.themeSystem], ['light', T.themeLight], ['dark', T.themeDark]]),
    radios(T.density, 'density', [['comfortable', T.comfortable], ['compact', T.compact]]),
    radios(T.readerPos, 'reader', [['right', T.readerRight], ['below', T.readerBelow]]),
    radios(T.undoSend, 'undoSeconds', [['', T.serverDefault], ['5', T.seconds(5)], ['10', T.seconds(10)], ['30', T.seconds(30)]]),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', id: 'notify', checked: ctx.prefs.notify === '1', onchange: async (/** @type {Event} */ e) => {
      const box = /** @type {HTMLInputElement} */ (e.target);
      if (box.checked && 'Notification' in window && Notification.permission !== 'granted') {
        const p = await Notification.requestPermission();
        if (p !== 'granted') { box.checked = false; ctx.toast(T.notifyDenied, { error: true }); return; }
      }
      ctx.savePref('notify', box.checked ? '1' : '');
    } }), T.notifications),
  ]);
  // The remote-image policy and the senders always shown, kept by the server.
  /** @type {{policy: string, senders: string[]}} */
  let im;
  try { im = await api.call('settings.images', {}); } catch (e) { ctx.fail(e); return; }
  const pol = (/** @type {string} */ v, /** @type {string} */ label) => h('label', { class: 'radio' }, h('input', { type: 'radio', name: 'img-policy', value: v, checked: im.policy === v }), label);
  const senders = h('ul', { class: 'shares', id: 'img-senders' }, ...(im.senders || []).map((/** @type {string} */ a) => h('li', {}, h('span', { text: a }),
    h('button', { type: 'button', class: 'btn', onclick: async (/** @type {Event} */ e) => {
      try { await api.call('settings.images', { removeSenders: [a] }); /** @type {HTMLElement} */ (/** @type {HTMLElement} */ (e.target).closest('li')).remove(); } catch (er) { ctx.fail(er); }
    }, text: T.remove }))));
  section(T.remoteImages, 'set-images', [h('fieldset', {}, h('legend', { class: 'visually-hidden', text: T.remoteImages }),
    pol('never', T.remoteNever), pol('ask', T.remoteAsk), pol('always', T.remoteAlways)), senders], async () => {
    const v = /** @type {HTMLInputElement | null} */ (grid.querySelector('input[name="img-policy"]:checked'))?.value;
    await api.call('settings.images', { policy: v }); ctx.toast(T.imagesSaved);
  });
  section(T.shortcuts, 'set-keys', [keyTable()]);
  /** @type {HTMLElement} */ (page.querySelector('#page-back')).focus();
}

function keyTable() {
  return h('table', { class: 'keys' }, h('tbody', {}, ...T.keys.map(([k, what]) => h('tr', {}, h('th', { scope: 'row' }, h('kbd', { text: k })), h('td', { text: what })))));
}

export function keysOverlay() {
  return dialog(T.shortcuts, (f) => f.append(keyTable()), T.close);
}

/**
 * Sharing a folder: who has access now (revoke), and a new grant to a
 * user or to the whole domain ("@example.org"), read or read and write.
 * @param {{folderID: number, name: string}} f @param {typeof import('./ui.js').toast} toast
 */
export async function shareDialog(f, toast) {
  /** @type {{folderID: number, grantee: string, access: string, domain: boolean}[]} */
  let shares = [];
  try {
    shares = ((await api.call('folders.shares', {})).shares || []).filter((/** @type {{folderID: number}} */ s) => s.folderID === f.folderID);
  } catch (e) { toast(e instanceof api.ApiError ? e.words : T.failed, { error: true }); return; }
  const fd = await dialog(`${T.sharing}: ${f.name}`, (form) => {
    const ul = h('ul', { class: 'shares', id: 'share-list', 'aria-label': T.sharing });
    if (!shares.length) ul.append(h('li', { class: 'muted', text: T.notShared }));
    for (const s of shares) {
      ul.append(h('li', {}, h('span', { text: `${s.domain ? T.everyoneAt(s.grantee) : s.grantee} — ${s.access === 'write' ? T.readWrite : T.readOnly}` }),
        h('button', { type: 'button', class: 'btn', 'aria-label': `${T.revoke} ${s.grantee}`, onclick: async (/** @type {Event} */ e) => {
          try {
            await api.call('folders.unshare', { folderID: f.folderID, grantee: s.grantee });
            /** @type {HTMLElement} */ (/** @type {HTMLElement} */ (e.target).closest('li')).remove();
            toast(T.revoked);
          } catch (er) { toast(er instanceof api.ApiError ? er.words : T.failed, { error: true }); }
        }, text: T.revoke })));
    }
    form.append(ul, h('label', { for: 'share-who', text: T.shareWith }), h('input', { id: 'share-who', name: 'who', type: 'text', autocomplete: 'off' }),
      h('fieldset', {}, h('legend', { text: T.shareRights }),
        h('label', { class: 'radio' }, h('input', { type: 'radio', name: 'access', value: 'read', checked: true }), T.readOnly),
        h('label', { class: 'radio' }, h('input', { type: 'radio', name: 'access', value: 'write' }), T.readWrite)));
  }, T.share);
  const who = String(fd?.get('who') || '').trim();
  if (!who) return;
  try {
    await api.call('folders.share', { folderID: f.folderID, grantee: who, access: fd?.get('access') === 'write' ? 'write' : 'read' });
    toast(T.shared);
  } catch (e) { toast(e instanceof api.ApiError ? e.words : T.failed, { error: true }); }
}
