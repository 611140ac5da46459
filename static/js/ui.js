// Shared pieces of the interface: toasts, the modal dialog (prompt,
// confirm, choose), and the stack of things Escape closes.
import { h, clear, ibtn } from './dom.js';
import { T } from './strings.js';

/** @type {(() => boolean)[]} closers, last opened last; each returns whether it closed something */
const escStack = [];

/** @param {() => boolean} f */
export function pushEscape(f) { escStack.push(f); return () => { const i = escStack.indexOf(f); if (i >= 0) escStack.splice(i, 1); }; }

/** Closes what opened last; false when nothing was open. */
export function escape() {
  while (escStack.length) {
    const f = /** @type {() => boolean} */ (escStack.pop());
    if (f()) return true;
  }
  return false;
}

/** How many notices show at once; past it the oldest plain one goes. */
const MAX_TOASTS = 3;
/** @type {WeakMap<Element, () => void>} each shown notice's close */
const closers = new WeakMap();

/**
 * Shows a notice at the bottom. The same words as a notice still shown
 * replace it rather than stack under it, and no more than MAX_TOASTS
 * stand over the page: a new one pushes out the oldest that has no undo
 * and is no error.
 * @param {string} msg
 * @param {{undo?: () => void, seconds?: number, error?: boolean}} [o]
 */
export function toast(msg, o = {}) {
  const box = document.getElementById('toasts');
  if (!box) return { close() {}, update() {} };
  // The notices are a landmark of their own (axe: all content in landmarks).
  if (!box.hasAttribute('aria-label')) box.setAttribute('aria-label', T.notices);
  const text = h('span', { text: msg });
  const el = h('div', { class: 'toast' + (o.error ? ' error' : ''), role: o.error ? 'alert' : 'status' }, text);
  let timer = 0;
  const close = () => { clearTimeout(timer); el.remove(); };
  if (o.undo) {
    const undo = o.undo;
    el.append(h('button', { type: 'button', class: 'btn toast-undo', onclick: () => { close(); undo(); }, text: T.undo }));
  }
  el.append(ibtn('close', T.close, close, { cls: 'toast-x' }));
  el.dataset.msg = msg;
  for (const old of box.querySelectorAll('.toast')) {
    if (/** @type {HTMLElement} */ (old).dataset.msg === msg && !old.querySelector('.toast-undo')) closers.get(old)?.();
  }
  const shown = [...box.querySelectorAll('.toast')];
  for (const old of shown.filter((x) => !x.querySelector('.toast-undo') && !x.classList.contains('error')).slice(0, Math.max(0, shown.length - MAX_TOASTS + 1))) closers.get(old)?.();
  closers.set(el, close);
  box.append(el);
  timer = window.setTimeout(close, (o.seconds || (o.error ? 8 : 5)) * 1000);
  return { close, update: (/** @type {string} */ s) => { text.textContent = s; } };
}

/**
 * A modal dialog with a form; resolves with the form's values, or null
 * when cancelled (Escape, Cancel).
 * @param {string} title
 * @param {(form: HTMLFormElement) => void} build adds the fields
 * @param {string} [ok]
 * @returns {Promise<FormData | null>}
 */
export function dialog(title, build, ok = T.save) {
  return new Promise((resolve) => {
    const dlg = /** @type {HTMLDialogElement} */ (document.getElementById('dialog'));
    clear(dlg);
    const form = h('form', { method: 'dialog' });
    const head = h('h2', { id: 'dialog-title', text: title });
    dlg.setAttribute('aria-labelledby', 'dialog-title');
    form.append(head);
    build(form);
    form.append(h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'btn', value: 'cancel', onclick: () => { dlg.close('cancel'); }, text: T.cancel }),
      h('button', { type: 'submit', class: 'btn primary', value: 'ok', id: 'dialog-ok', text: ok })));
    dlg.append(form);
    let done = false;
    dlg.addEventListener('close', () => {
      if (done) return;
      done = true;
      resolve(dlg.returnValue === 'ok' ? new FormData(form) : null);
    }, { once: true });
    form.addEventListener('submit', (e) => { e.preventDefault(); dlg.close('ok'); });
    dlg.showModal();
    const first = /** @type {HTMLElement | null} */ (form.querySelector('input, select, textarea'));
    (first || /** @type {HTMLElement} */ (form.querySelector('#dialog-ok'))).focus();
  });
}

/** @param {string} title @param {string} label @param {string} [value] */
export async function prompt(title, label, value = '') {
  const fd = await dialog(title, (f) => f.append(h('label', { for: 'dlg-in', text: label }), h('input', { id: 'dlg-in', name: 'v', type: 'text', required: true, value })));
  const v = fd?.get('v');
  return typeof v === 'string' && v.trim() ? v.trim() : null;
}

/** @param {string} title @param {string} text @param {string} ok */
export async function confirm(title, text, ok) {
  const fd = await dialog(title, (f) => f.append(h('p', { text })), ok);
  return fd !== null;
}
