// Every string the app shows, in one place (for translation later).
export const T = {
  app: 'Basalt',
  title: (/** @type {number} */ n, /** @type {string} */ folder) => (n > 0 ? `(${n}) ` : '') + `${folder} — Basalt`,
  loginTitle: 'Sign in to Basalt',
  username: 'Email address',
  password: 'Password',
  signIn: 'Sign in',
  signingIn: 'Signing in…',
  loginFailed: 'That address and password do not match.',
  locked: (/** @type {string} */ r) => `This account is locked: ${r || 'too many failed attempts'}. Try again later.`,
  reauth: 'Your session ended. Sign in again to go on; your draft is kept.',
  logout: 'Sign out',
  loggedOut: 'You are signed out.',
  compose: 'Compose',
  search: 'Search mail',
  searchHelp: 'Search: from: to: subject: has:attachment is:unread is:flagged before: after: larger: in: "phrase" -word',
  searchHere: 'This folder',
  searchAll: 'All folders',
  searchResults: (/** @type {number} */ n) => `${n.toLocaleString()} found`,
  searchAbout: (/** @type {number} */ n) => `about ${n.toLocaleString()} found`,
  clearSearch: 'Clear search',
  folders: 'Folders',
  newFolder: 'New folder',
  folderName: 'Folder name',
  renameFolder: 'Rename',
  moveFolder: 'Move to…',
  deleteFolder: 'Delete',
  shareFolder: 'Share…',
  topLevel: '(top level)',
  confirmDeleteFolder: (/** @type {string} */ n) => `Delete the folder “${n}” and everything in it? This cannot be undone.`,
  unreadCount: (/** @type {number} */ n) => `${n} unread`,
  sharedWithMe: 'Shared with me',
  messages: 'Messages',
  empty: 'No messages here.',
  loading: 'Loading…',
  sortBy: 'Sort', descending: 'Descending',
  sorts: /** @type {Record<string,string>} */ ({
    arrival: 'Date received', sent: 'Date sent', from: 'Sender', subject: 'Subject', size: 'Size', flagged: 'Flagged', unread: 'Unread',
  }),
  filterUnread: 'Unread',
  filterFlagged: 'Flagged',
  filterAttach: 'Attachments',
  threads: 'Conversations',
  unread: 'unread',
  flagged: 'flagged',
  hasAttachment: 'has attachment',
  inThread: (/** @type {number} */ n) => `${n} messages`,
  selected: (/** @type {number} */ n) => `${n} selected`,
  noSubject: '(no subject)',
  noSender: '(no sender)',
  selectMessage: 'Select a message to read it.',
  reply: 'Reply', replyAll: 'Reply all', forward: 'Forward', del: 'Delete', archive: 'Archive', spam: 'Spam',
  markUnread: 'Mark unread', markRead: 'Mark read', flag: 'Flag', unflag: 'Unflag', move: 'Move', more: 'More',
  viewSource: 'View source', print: 'Print', back: 'Back', close: 'Close', download: 'Download',
  from: 'From', to: 'To', cc: 'Cc', bcc: 'Bcc', date: 'Date', subject: 'Subject',
  remoteBlocked: 'Remote images are blocked to protect your privacy.',
  showImages: 'Show images', alwaysShow: (/** @type {string} */ s) => `Always for ${s}`,
  attachments: (/** @type {number} */ n) => n === 1 ? '1 attachment' : `${n} attachments`,
  svgNote: 'SVG files are offered for download only.',
  truncated: 'This message is long; the rest is in the source.',
  warnPhishing: 'This message looks like phishing. Be careful with its links.',
  warnSpoofed: 'The sender of this message could not be verified.',
  warnJunk: 'This message was marked as junk.',
  sourceTitle: 'Message source', notices: 'Notices',
  moved: (/** @type {number} */ n, /** @type {string} */ f) => `${n === 1 ? 'Message' : n + ' messages'} moved to ${f}`,
  deleted: (/** @type {number} */ n) => `${n === 1 ? 'Message' : n + ' messages'} deleted`,
  deletedForever: (/** @type {number} */ n) => `${n === 1 ? 'Message' : n + ' messages'} deleted for good`,
  confirmRemove: (/** @type {number} */ n) => `Delete ${n === 1 ? 'this message' : n + ' messages'} for good? This cannot be undone.`,
  undo: 'Undo', undone: 'Undone',
  newMail: (/** @type {number} */ n) => n === 1 ? 'New message' : `${n} new messages`,
  // compose
  newMessage: 'New message', send: 'Send', sending: 'Sending…', sendLater: 'Send later', sendAt: 'Send at',
  sent: 'Message sent', sentIn: (/** @type {number} */ s) => `Sending in ${s} s`, scheduled: (/** @type {string} */ t) => `Scheduled for ${t}`,
  unsent: 'Sending cancelled; the message is back in the editor.',
  discard: 'Discard', saveDraft: 'Save draft', saved: 'Draft saved', saving: 'Saving…',
  attach: 'Attach files', dropFiles: 'Drop files to attach', uploading: (/** @type {string} */ n) => `Uploading ${n}…`,
  removeAttachment: (/** @type {string} */ n) => `Remove ${n}`,
  bold: 'Bold', italic: 'Italic', bullets: 'Bulleted list', numbers: 'Numbered list', link: 'Link', quote: 'Quote',
  linkPrompt: 'Link address (https://…)', plainText: 'Plain text', richText: 'Rich text',
  body: 'Message', wrote: (/** @type {string} */ d, /** @type {string} */ w) => `On ${d}, ${w} wrote:`,
  fwdHeader: '---------- Forwarded message ----------',
  noRecipients: 'Add at least one recipient.',
  badAddress: (/** @type {string} */ a) => `“${a}” is not an email address.`,
  resumeDraft: 'Your unsent message was kept and is open again.',
  recipientRefused: (/** @type {string} */ a, /** @type {string} */ r) => `${a} was refused: ${r}`,
  // contacts
  contacts: 'Contacts', newContact: 'New contact', name: 'Name', emails: 'Email addresses', phones: 'Phone numbers',
  organization: 'Organization', jobTitle: 'Title', notes: 'Notes', save: 'Save', cancel: 'Cancel', remove: 'Delete',
  importVCard: 'Import vCard', exportVCard: 'Export vCard', imported: (/** @type {number} */ n, /** @type {number} */ s) => `${n} imported, ${s} skipped`,
  contactSaved: 'Contact saved', noContacts: 'No contacts yet.', confirmContact: (/** @type {string} */ n) => `Delete ${n}?`,
  // settings
  settings: 'Settings', identity: 'Identity', displayName: 'Display name', signature: 'Signature',
  vacation: 'Vacation reply', vacationOn: 'Send an automatic reply', vacSubject: 'Subject', vacBody: 'Reply',
  vacStart: 'From', vacEnd: 'Until', vacSaved: 'Vacation reply saved', identitySaved: 'Identity saved',
  changePassword: 'Password', oldPassword: 'Current password', newPassword: 'New password', passwordChanged: 'Password changed',
  remoteImages: 'Remote images', remoteAsk: 'Ask for each message', remoteNever: 'Never show', imagesSaved: 'Image settings saved', remoteAlways: 'Always show (through the proxy)',
  appearance: 'Appearance', theme: 'Theme', themeSystem: 'Follow the system', themeLight: 'Light', themeDark: 'Dark',
  density: 'Density', comfortable: 'Comfortable', compact: 'Compact', readerPos: 'Reading pane', readerRight: 'Right of the list', readerBelow: 'Below the list',
  undoSend: 'Time to undo a send', serverDefault: 'The server’s default', seconds: (/** @type {number} */ n) => `${n} seconds`,
  notifications: 'Desktop notifications for new mail', notifyDenied: 'The browser refused notifications.',
  shortcuts: 'Keyboard shortcuts', toggleTheme: 'Toggle dark mode', account: 'Account', quota: (/** @type {string} */ u, /** @type {string} */ l) => `${u} of ${l} used`,
  // sharing
  sharing: 'Sharing', shareWith: 'A user’s address, or @example.org for everyone in the domain', everyoneAt: (/** @type {string} */ d) => `Everyone at ${d.replace(/^@/, '')}`, shareRights: 'Access', readOnly: 'Read', readWrite: 'Read and write',
  share: 'Share', revoke: 'Revoke', notShared: 'Not shared with anyone.', shared: 'Shared', revoked: 'Access revoked',
  // keys overlay
  keys: /** @type {[string,string][]} */ ([
    ['j / k', 'Next / previous message'], ['o / Enter', 'Open'], ['u', 'Back to the list'], ['r', 'Reply'], ['a', 'Reply all'],
    ['f', 'Forward'], ['c', 'Compose'], ['e', 'Archive'], ['#', 'Delete'], ['s', 'Flag / unflag'], ['x', 'Select'],
    ['/', 'Search'], ['g i', 'Go to Inbox'], ['?', 'This list'], ['Escape', 'Close what opened last'],
  ]),
  // errors in words
  errors: /** @type {Record<string,string>} */ ({
    overQuota: 'Your mailbox is full', tooLarge: 'That is too large', forbiddenFrom: 'You may not send from that address',
    forbidden: 'That is not allowed', dailyLimit: 'You reached your daily sending limit', recipientRefused: 'A recipient was refused',
    sendFailed: 'The message could not be sent; nothing left', notFound: 'It is no longer there', exists: 'That name is taken',
    notEmpty: 'It is not empty', stateMismatch: 'Something changed meanwhile; reloaded', invalid: 'That value cannot be used',
  }),
  network: 'The server cannot be reached. Check your connection.',
  rateLimited: 'Too many requests; wait a moment.',
  unavailable: 'The server is busy; try again shortly.',
  failed: 'That did not work',
};

/** @param {number} n bytes */
export function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(1)} GB`;
}

const dayFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const yearFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

/** @param {number} utc seconds */
export function shortDate(utc) {
  const d = new Date(utc * 1000), now = new Date();
  if (d.toDateString() === now.toDateString()) return dayFmt.format(d);
  if (d.getFullYear() === now.getFullYear()) return dateFmt.format(d);
  return yearFmt.format(d);
}

/** @param {number} utc seconds */
export function longDate(utc) { return fullFmt.format(new Date(utc * 1000)); }
