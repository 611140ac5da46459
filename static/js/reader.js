// The reading pane: header, warnings, remote-image consent, the body in a
// frame sandboxed without scripts and without its origin, attachments.
import { h, icon, ibtn, clear, linkify } from './dom.js';
import { T, size, longDate } from './strings.js';

/**
 * @typedef {import('./list.js').Msg} Msg
 * @typedef {{part: string, name: string, type: string, size: number, inline: boolean, url: string, contentID?: string}} Attachment
 * @typedef {{messageID: string, meta: Msg, header: {name: string, value: string}[], body: {text: string, html: string, remoteBlocked: boolean, truncated?: boolean},
 *   bodyURL: string, remoteImages?: number, imagesShown?: boolean, attachments: Attachment[], security?: {junk?: boolean, phishing?: boolean, spoofed?: boolean}}} Loaded
 * @typedef {{reply: (all: boolean) => void, forward: () => void, remove: () => void, archive: () => void, flag: () => void, unread: () => void,
 *   showImages: (always: boolean) => void, source: () => void, back: () => void}} ReaderActions
 */

const PREVIEW = ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif'];

/** @param {{address: string, name?: string}[]} list */
export function addrs(list) {
  return list.map((a) => (a.name ? `${a.name} <${a.address}>` : a.address)).join(', ');
}

/**
 * @param {HTMLElement} pane
 * @param {Loaded} msg
 * @param {ReaderActions} act
 */
export function renderMessage(pane, msg, act) {
  clear(pane);
  const m = msg.meta;
  const from = m.from[0];
  const flagged = m.flags.includes('flagged');
  const bar = h('div', { class: 'toolbar reader-bar', role: 'toolbar', 'aria-label': T.messages },
    ibtn('back', T.back, act.back, { cls: 'only-phone' }),
    ibtn('reply', T.reply, () => act.reply(false), { id: 'btn-reply' }),
    ibtn('replyAll', T.replyAll, () => act.reply(true), { id: 'btn-reply-all' }),
    ibtn('forward', T.forward, act.forward, { id: 'btn-forward' }),
    ibtn('archive', T.archive, act.archive),
    ibtn('trash', T.del, act.remove, { id: 'btn-delete' }),
    ibtn('star', flagged ? T.unflag : T.flag, act.flag, { cls: flagged ? 'on' : '' }),
    ibtn('mail', T.markUnread, act.unread),
    ibtn('code', T.viewSource, act.source, { id: 'btn-source', cls: 'hide-phone' }),
    ibtn('print', T.print, () => window.print(), { id: 'btn-print', cls: 'hide-phone' }));
  const head = h('header', { class: 'msg-head' },
    h('h2', { id: 'msg-subject', text: m.subject || T.noSubject }),
    h('dl', { class: 'addr' },
      h('dt', { text: T.from }), h('dd', { class: 'from', text: from ? addrs([from]) : T.noSender }),
      m.to.length ? h('dt', { text: T.to }) : null, m.to.length ? h('dd', { text: addrs(m.to) }) : null,
      m.cc.length ? h('dt', { text: T.cc }) : null, m.cc.length ? h('dd', { text: addrs(m.cc) }) : null,
      h('dt', { text: T.date }), h('dd', {}, h('time', { datetime: new Date(m.utc * 1000).toISOString(), text: longDate(m.utc) }))));
  pane.append(bar, head);
  const sec = msg.security || {};
  if (sec.phishing) pane.append(h('p', { class: 'warn', role: 'alert', text: T.warnPhishing }));
  if (sec.spoofed) pane.append(h('p', { class: 'warn', text: T.warnSpoofed }));
  if (sec.junk) pane.append(h('p', { class: 'note', text: T.warnJunk }));
  if (msg.body.html ? (msg.remoteImages || 0) > 0 && !msg.imagesShown : msg.body.remoteBlocked) {
    pane.append(h('div', { class: 'note remote', role: 'status' },
      h('span', { text: T.remoteBlocked }),
      h('button', { type: 'button', class: 'btn', id: 'btn-show-images', onclick: () => act.showImages(false), text: T.showImages }),
      from ? h('button', { type: 'button', class: 'btn', id: 'btn-always-images', onclick: () => act.showImages(true), text: T.alwaysShow(from.address) }) : null));
  }
  const attachments = msg.attachments || [];
  if (msg.body.html) {
    // The server's own document for the body (rpc/frame.go), with its
    // own CSP, in a frame sandboxed without scripts or its origin.
    pane.append(h('iframe', { class: 'body-frame', title: m.subject || T.body, sandbox: 'allow-popups allow-popups-to-escape-sandbox', src: msg.bodyURL, referrerpolicy: 'no-referrer' }));
  } else {
    pane.append(h('pre', { class: 'body-text', id: 'body-text' }, linkify(msg.body.text || '')));
  }
  if (msg.body.truncated) pane.append(h('p', { class: 'note', text: T.truncated }));
  const files = attachments.filter((a) => !a.inline || !a.contentID);
  if (files.length) {
    const list = h('ul', { class: 'attachments', 'aria-label': T.attachments(files.length) });
    for (const a of files) {
      const isSVG = a.type === 'image/svg+xml' || /\.svgz?$/i.test(a.name);
      const preview = PREVIEW.includes(a.type) && !isSVG;
      list.append(h('li', {},
        preview ? h('img', { src: a.url, alt: '', loading: 'lazy', class: 'thumb', width: '64', height: '64' }) : h('span', { class: 'thumb' }, icon('clip')),
        h('span', { class: 'att-name', text: a.name }),
        h('span', { class: 'att-meta', text: `${a.type} · ${size(a.size)}` }),
        h('a', { class: 'btn', href: a.url, download: a.name, 'aria-label': `${T.download} ${a.name}` }, icon('download'), h('span', { text: T.download })),
        isSVG ? h('span', { class: 'att-meta', text: T.svgNote }) : null));
    }
    pane.append(h('h3', { class: 'att-title', text: T.attachments(files.length) }), list);
  }
}

/**
 * A conversation: the thread's messages, oldest first, each a summary
 * that opens in place.
 * @param {HTMLElement} pane @param {Msg[]} msgs @param {(m: Msg) => void} open
 */
export function renderThread(pane, msgs, open) {
  const list = h('ol', { class: 'thread', 'aria-label': T.threads });
  for (const m of msgs) {
    list.append(h('li', {}, h('button', { type: 'button', class: 'thread-item' + (m.flags.includes('seen') ? '' : ' unread'), onclick: () => open(m) },
      h('span', { class: 'who', text: m.from[0]?.name || m.from[0]?.address || T.noSender }),
      h('span', { class: 'snippet', text: m.snippet }),
      h('time', { text: longDate(m.utc) }))));
  }
  pane.prepend(list);
}
