// DOM helpers: elements are built with createElement and textContent. No
// HTML is ever parsed from a string: the app has no Trusted Types policy
// (the CSP allows none), message bodies come as the server's own documents
// by URL (reader.js).

/** @typedef {Record<string, any>} Attrs */

/**
 * h builds an element. Attributes starting with "on" are listeners;
 * "class", "text", "dataset" and boolean values are handled; everything
 * else goes through setAttribute.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs|null} [attrs]
 * @param {...(Node|string|null|undefined|false)} kids
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      // Through the CSSOM: the CSP (style-src 'self') refuses style attributes.
      else if (k === 'style') el.style.cssText = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'value' || k === 'checked' || k === 'selected') /** @type {any} */ (el)[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const kid of kids) if (kid !== null && kid !== undefined && kid !== false) el.append(kid);
  return el;
}

/** @param {Element} el */
export function clear(el) { el.replaceChildren(); return el; }

/** @param {string} sel @param {ParentNode} [root] @returns {HTMLElement} */
export function $(sel, root = document) {
  const el = root.querySelector(sel);
  if (!el) throw new Error('missing ' + sel);
  return /** @type {HTMLElement} */ (el);
}

const SVG = 'http://www.w3.org/2000/svg';
// 24x24 stroke icons, drawn for the app.
const ICONS = /** @type {Record<string,string>} */ ({
  inbox: 'M3 13h5l2 3h4l2-3h5M5 5h14l2 8v6H3v-6z',
  sent: 'M3 11l18-8-8 18-2-8z',
  drafts: 'M4 20h4L19 9l-4-4L4 16zM13 7l4 4',
  trash: 'M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13',
  junk: 'M12 3l9 16H3zM12 10v4M12 17v.5',
  archive: 'M3 4h18v4H3zM5 8v12h14V8M10 12h4',
  folder: 'M3 6h6l2 2h10v11H3z',
  shared: 'M3 6h6l2 2h10v11H3zM9 16a3 3 0 016 0M12 13a1.5 1.5 0 100-.1',
  star: 'M12 3l2.7 5.6 6.1.9-4.4 4.3 1 6.1L12 17l-5.4 2.9 1-6.1-4.4-4.3 6.1-.9z',
  clip: 'M20 11l-8 8a5 5 0 01-7-7l8-8a3.5 3.5 0 015 5l-8 8a2 2 0 01-3-3l7-7',
  dot: 'M12 9a3 3 0 100 6 3 3 0 000-6z',
  reply: 'M10 5L3 12l7 7M3 12h11a7 7 0 017 7',
  replyAll: 'M8 5l-7 7 7 7M13 5l-7 7 7 7M6 12h9a6 6 0 016 6',
  forward: 'M14 5l7 7-7 7M21 12H10a7 7 0 00-7 7',
  pen: 'M4 20h4L19 9l-4-4L4 16z',
  search: 'M10.5 4a6.5 6.5 0 100 13 6.5 6.5 0 000-13zM15.5 15.5L21 21',
  menu: 'M4 6h16M4 12h16M4 18h16',
  back: 'M15 5l-7 7 7 7',
  close: 'M6 6l12 12M18 6L6 18',
  moon: 'M20 14.5A8 8 0 119.5 4a6.5 6.5 0 0010.5 10.5z',
  gear: 'M12 9a3 3 0 100 6 3 3 0 000-6zM12 2v3M12 19v3M2 12h3M19 12h3M4.9 4.9L7 7M17 17l2.1 2.1M4.9 19.1L7 17M17 7l2.1-2.1',
  user: 'M12 12a4 4 0 100-8 4 4 0 000 8zM4 21a8 8 0 0116 0',
  more: 'M5 12h.01M12 12h.01M19 12h.01',
  plus: 'M12 5v14M5 12h14',
  mail: 'M3 5h18v14H3zM3 6l9 7 9-7',
  eye: 'M2 12s4-7 10-7 10 7 10 7-4 7-10 7S2 12 2 12zM12 9a3 3 0 100 6 3 3 0 000-6z',
  print: 'M6 9V3h12v6M6 17H3v-8h18v8h-3M6 14h12v7H6z',
  code: 'M8 7l-5 5 5 5M16 7l5 5-5 5',
  download: 'M12 3v12M7 10l5 5 5-5M4 20h16',
  logout: 'M15 4h4v16h-4M10 8l-4 4 4 4M6 12h10',
  thread: 'M4 5h16v10H8l-4 4z',
  key: 'M3 7h18v10H3zM7 11h.01M11 11h.01M15 11h.01M8 14h8',
  link: 'M10 14a4 4 0 006 0l3-3a4 4 0 00-6-6l-1 1M14 10a4 4 0 00-6 0l-3 3a4 4 0 006 6l1-1',
});

/** Adds the icons to the page once, as <symbol>s of one hidden <svg>. */
export function installIcons() {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'sprite');
  for (const [name, d] of Object.entries(ICONS)) {
    const sym = document.createElementNS(SVG, 'symbol');
    sym.id = 'i-' + name;
    sym.setAttribute('viewBox', '0 0 24 24');
    const p = document.createElementNS(SVG, 'path');
    p.setAttribute('d', d);
    sym.append(p);
    svg.append(sym);
  }
  document.body.prepend(svg);
}

/** @param {string} name @param {string} [cls] */
export function icon(name, cls) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'icon' + (cls ? ' ' + cls : ''));
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const use = document.createElementNS(SVG, 'use');
  use.setAttribute('href', '#i-' + name);
  svg.append(use);
  return svg;
}

/**
 * A button with an icon; the label is its accessible name (and tooltip
 * when the text is hidden).
 * @param {string} name @param {string} label @param {(e: MouseEvent) => void} onclick
 * @param {{text?: boolean, cls?: string, id?: string}} [o]
 */
export function ibtn(name, label, onclick, o = {}) {
  const b = h('button', { type: 'button', class: 'btn ' + (o.text ? '' : 'icon-only ') + (o.cls || ''), id: o.id, title: o.text ? undefined : label, 'aria-label': o.text ? undefined : label, onclick },
    icon(name));
  if (o.text) b.append(h('span', { text: label }));
  return b;
}

/**
 * Plain text with http(s) and mailto links made into anchors, built node
 * by node (nothing is parsed as HTML).
 * @param {string} text
 */
export function linkify(text) {
  const frag = document.createDocumentFragment();
  const re = /\b(https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]|mailto:[^\s<>"']+@[^\s<>"'.,;:!?)]+)/gi;
  let last = 0;
  for (const m of text.matchAll(re)) {
    const i = m.index ?? 0;
    if (i > last) frag.append(text.slice(last, i));
    let url = null;
    try { url = new URL(m[0]); } catch { url = null; }
    if (url && (url.protocol === 'http:' || url.protocol === 'https:' || url.protocol === 'mailto:')) {
      frag.append(h('a', { href: url.href, target: '_blank', rel: 'noopener noreferrer nofollow', text: m[0] }));
    } else frag.append(m[0]);
    last = i + m[0].length;
  }
  if (last < text.length) frag.append(text.slice(last));
  return frag;
}

/** @param {number} ms */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
