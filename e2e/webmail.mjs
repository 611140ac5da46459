// The webmail in a real browser. Run by server/e2e_test.go (TestWebmailBrowser),
// which starts Basalt and the control server and passes their URLs.
import { launch, watch, shot, axe, control, check, step, p50, BASE, SHOTS } from './lib.mjs';

const BIG = Number(process.env.BIG_FOLDER || 0);
const ctx = await launch();
const page = ctx.pages()[0] || await ctx.newPage();
const seen = watch(page);
const perf = { login: /** @type {number[]} */ ([]), open: /** @type {number[]} */ ([]), jump: /** @type {number[]} */ ([]), search: /** @type {number[]} */ ([]) };

/** @param {import('playwright-core').Page} p */
async function login(p, user = 'alice@example.org') {
  await p.goto(BASE + '/mail/');
  await p.fill('#username', user);
  await p.fill('#password', 'password one');
  await p.click('#login-btn');
  await p.waitForFunction(() => performance.getEntriesByName('login-inbox').length > 0);
  await p.waitForSelector('#list .row[data-id]');
  return p.evaluate(() => performance.getEntriesByName('login-inbox')[0].duration);
}

/** @param {string} name */
async function openFolder(name) {
  await page.click(`#folders .folder:has(.fname:text-is("${name}"))`);
  await page.waitForFunction((n) => document.querySelector('#folder-title')?.textContent === n, name);
  await page.waitForSelector('#list .row[data-id]');
}

// Every screen of the app keeps its content in landmarks, with one banner.
const LANDMARKS = ['region', 'landmark-one-main', 'landmark-no-duplicate-banner', 'landmark-no-duplicate-contentinfo', 'landmark-no-duplicate-main', 'landmark-banner-is-top-level'];
/** @param {import('playwright-core').Page} p @param {string} screen */
const axeApp = (p, screen) => axe(p, screen, LANDMARKS);

try {
  await step('security headers', async () => {
    const r = await fetch(BASE + '/mail/');
    const csp = r.headers.get('content-security-policy') || '';
    check(csp.includes("script-src 'self'") && csp.includes("require-trusted-types-for 'script'") && csp.includes("trusted-types 'none'") && csp.includes("object-src 'none'") && csp.includes("frame-ancestors 'none'"), 'CSP: ' + csp);
    check(r.headers.get('x-content-type-options') === 'nosniff', 'nosniff');
    check(!!r.headers.get('referrer-policy'), 'referrer-policy');
  });

  await step('login page and axe', async () => {
    await page.goto(BASE + '/mail/');
    await page.waitForSelector('#username');
    await shot(page, 'login-desktop-light');
    await axeApp(page, 'login');
    await page.fill('#username', 'alice@example.org');
    await page.fill('#password', 'wrong password');
    await page.click('#login-btn');
    await page.waitForSelector('#login-error:not([hidden])');
    check((await page.textContent('#login-error') || '').length > 5, 'a refused login says why');
  });

  await step('log in, inbox of 50 rendered', async () => {
    // Three seconds to undo a send keeps the test short (a setting).
    await page.evaluate(() => localStorage.setItem('basalt.prefs', JSON.stringify({ undoSeconds: '3' })));
    perf.login.push(await login(page));
    const rows = await page.locator('#list .row[data-id]').count();
    check(rows >= 10, `rows shown: ${rows}`);
    check(/^\(\d+\) Inbox — Basalt$/.test(await page.title()), 'title: ' + await page.title());
    await shot(page, 'inbox-desktop-light');
    await axeApp(page, 'inbox');
  });

  await step('new mail appears without reload', async () => {
    const before = await page.title();
    await control('/deliver', { From: 'Bob <bob@example.org>', To: 'alice@example.org', Subject: 'Live delivery', Body: 'Fresh off the wire.' });
    await page.waitForSelector('#list .row[data-id] .subject:text-is("Live delivery")', { timeout: 10000 });
    await page.waitForFunction((b) => document.title !== b, before);
  });

  await step('open a message', async () => {
    await page.click('#list .row:has(.subject:text-is("Live delivery"))');
    await page.waitForSelector('#msg-subject:text-is("Live delivery")');
    await page.waitForSelector('#body-text:has-text("Fresh off the wire.")');
    perf.open.push(await page.evaluate(() => performance.getEntriesByName('open').at(-1)?.duration || -1));
    await shot(page, 'reader-desktop-light');
    await axeApp(page, 'reader');
  });

  await step('print and view source', async () => {
    // The browser's print dialog cannot be driven headless: the call is recorded.
    await page.evaluate(() => { /** @type {any} */ (window).printed = 0; window.print = () => { /** @type {any} */ (window).printed++; }; });
    await page.click('#btn-print');
    check(await page.evaluate(() => /** @type {any} */ (window).printed) === 1, 'print asked the browser to print');
    await page.click('#btn-source');
    await page.waitForSelector('#dialog[open] pre.source');
    const src = (await page.textContent('#dialog pre.source')) || '';
    check(/^Subject: Live delivery\r?$/m.test(src) && src.includes('Fresh off the wire.'), 'the source shows the raw message: ' + src.slice(0, 200));
    check((await page.textContent('#dialog-title')) === 'Message source', 'the source dialog is titled');
    await page.keyboard.press('Escape');
    await page.waitForSelector('#dialog[open]', { state: 'detached' });
  });

  await step('reply with an attachment', async () => {
    await page.click('#btn-reply');
    await page.waitForSelector('#c-body');
    check((await page.inputValue('#c-subject')) === 'Re: Live delivery', 'reply subject');
    await page.setInputFiles('#c-files', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('attached notes\n') });
    await page.waitForSelector('.files .chip:has-text("notes.txt")');
    check((await page.locator('#c-to').locator('xpath=..').textContent()).includes('bob@example.org'), 'the reply goes to the sender');
    await page.fill('#c-body', 'Thanks, with notes.\n' + await page.inputValue('#c-body'));
    await shot(page, 'compose-desktop-light');
    await axeApp(page, 'compose');
    await page.click('#c-send');
    await page.waitForSelector('.toast:has-text("Sending in")');
    // The undo window passes; then it leaves.
    await page.waitForSelector('.toast:has-text("Message sent")', { timeout: 15000 });
    // The queue sends it when the undo time is over.
    const arrived = async () => {
      const sent = await control('/messages?user=alice@example.org&folder=Sent');
      const bob = await control('/messages?user=bob@example.org&folder=INBOX');
      return sent.some((m) => m.subject === 'Re: Live delivery' && m.attachments) && bob.some((m) => m.subject === 'Re: Live delivery');
    };
    for (let i = 0; i < 100 && !(await arrived()); i++) await page.waitForTimeout(100);
    check(await arrived(), 'the reply is in Sent with its attachment and in bob\'s inbox');
    await openFolder('Sent');
    await page.waitForSelector('#list .row .subject:text-is("Re: Live delivery")');
  });

  await step('undo a send', async () => {
    await page.keyboard.press('c');
    await page.waitForSelector('#c-to');
    await page.fill('#c-to', 'bob@example.org');
    await page.fill('#c-subject', 'Never sent');
    await page.fill('#c-body', 'undo me');
    await page.click('#c-send');
    await page.click('.toast-undo');
    await page.waitForSelector('#c-subject');
    check(await page.inputValue('#c-subject') === 'Never sent', 'the compose is back');
    await page.click('#c-discard');
    await page.waitForTimeout(4000);
    const bob = await control('/messages?user=bob@example.org&folder=INBOX');
    check(!bob.some((m) => m.subject === 'Never sent'), 'an undone message never arrives');
  });

  await step('rich text editor, pasted and dropped files', async () => {
    await page.keyboard.press('c');
    await page.waitForSelector('#c-mode');
    await page.click('#c-mode');
    await page.click('#c-editor');
    await page.keyboard.type('Bold words');
    await page.keyboard.press('Control+A');
    await page.click('.fmtbar button[aria-label="Bold"]');
    check(await page.locator('#c-editor b, #c-editor strong').count() > 0, 'bold');
    await page.click('.fmtbar button[aria-label="Link"]');
    await page.fill('.linkbox input', 'https://example.org/');
    await page.press('.linkbox input', 'Enter');
    await page.waitForSelector('#c-editor a[href="https://example.org/"]');
    await page.click('.fmtbar button[aria-label="Bulleted list"]');
    await page.waitForSelector('#c-editor ul li');
    await page.evaluate(() => {
      const png = Uint8Array.from(atob('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='), (c) => c.charCodeAt(0));
      const paste = new DataTransfer();
      paste.items.add(new File([png], 'pasted.png', { type: 'image/png' }));
      document.querySelector('#c-editor')?.dispatchEvent(new ClipboardEvent('paste', { clipboardData: paste, bubbles: true, cancelable: true }));
      const drop = new DataTransfer();
      drop.items.add(new File(['dropped text'], 'dropped.txt', { type: 'text/plain' }));
      document.querySelector('.compose')?.dispatchEvent(new DragEvent('drop', { dataTransfer: drop, bubbles: true, cancelable: true }));
    });
    await page.waitForSelector('.files .chip:has-text("pasted.png")');
    await page.waitForSelector('.files .chip:has-text("dropped.txt")');
    await shot(page, 'compose-rich-desktop-light');
    await page.click('#c-discard');
  });

  await step('send later', async () => {
    await page.keyboard.press('c');
    await page.waitForSelector('#c-when');
    await page.fill('#c-to', 'bob@example.org');
    await page.fill('#c-subject', 'Tomorrow\'s note');
    await page.fill('#c-body', 'for later');
    const at = new Date(Date.now() + 3600e3);
    const local = new Date(at.getTime() - at.getTimezoneOffset() * 60e3).toISOString().slice(0, 16);
    await page.fill('#c-when', local);
    await page.click('#c-later');
    await page.waitForSelector('.toast:has-text("Scheduled for")');
    const r = await page.evaluate(() => fetch('/rpc', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': sessionStorage.getItem('basalt.csrf') || '' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'messages.scheduled', params: {} }) }).then((x) => x.json()));
    const sch = r.result.scheduled.find((x) => x.subject === 'Tomorrow\'s note');
    check(!!sch && Math.abs(sch.sendAt - Math.floor(at.getTime() / 60e3) * 60) < 61, 'scheduled for the chosen time: ' + JSON.stringify(r.result));
  });

  await step('multi-select and drag-and-drop onto a folder', async () => {
    await openFolder('Inbox');
    // Mail sent in the steps before (the reply, the undone and the later
    // sends) may still be arriving: a list that re-renders under the
    // pointer would drop the selection or the drag. Go on once the
    // inbox's rows have stayed the same for half a second.
    let last = '';
    for (let quiet = 0; quiet < 5;) {
      await page.waitForTimeout(100);
      const now = (await page.locator('#list .row[data-id]').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-id')).join(','))) +
        (await page.textContent('#count-line'));
      quiet = now === last ? quiet + 1 : 0;
      last = now;
    }
    const rows = page.locator('#list .row[data-id]');
    await rows.nth(12).click();
    await rows.nth(14).click({ modifiers: ["Shift"] });
    await rows.nth(16).click({ modifiers: ["Control"] });
    check(await page.locator('#list .row.selected').count() === 4, 'four selected');
    check((await page.textContent('#count-line') || '').includes('4 selected'), 'the count says 4 selected');
    const subjects = await page.locator('#list .row.selected .subject').allTextContents();
    await rows.nth(16).dragTo(page.locator('#folders .folder:has(.fname:text-is("Projects"))'));
    await page.waitForSelector('.toast:has-text("moved to Projects")');
    await openFolder('Projects');
    const moved = await page.locator('#list .row .subject').allTextContents();
    check(subjects.every((s) => moved.includes(s)), `moved ${JSON.stringify(subjects)} got ${JSON.stringify(moved)}`);
  });

  await step('a drop survives a folder change during the drag', async () => {
    // From Projects (the messages just moved there) to Archive, while a
    // change comes in that redraws the folder tree (a folder made in
    // another tab, as new mail would).
    await openFolder('Projects');
    const row = page.locator('#list .row[data-id]').first();
    const subject = await row.locator('.subject').textContent();
    const dt = await page.evaluateHandle(() => new DataTransfer());
    await row.dispatchEvent('dragstart', { dataTransfer: dt });
    const target = await page.locator('#folders .folder:has(.fname:text-is("Archive"))').elementHandle();
    const applied = await page.evaluate(() => performance.getEntriesByName('change-applied').length);
    /** @param {string} method @param {any} params */
    const rpc = (method, params) => page.evaluate(([m, p]) => fetch('/rpc', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': sessionStorage.getItem('basalt.csrf') || '' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: m, params: p }) }).then((x) => x.json()), [method, params]);
    const made = await rpc('folders.add', { name: 'Elsewhere' });
    await page.waitForFunction((n) => performance.getEntriesByName('change-applied').length > n, applied, { timeout: 10000 });
    // The folder under the pointer is still the one the drag is over.
    check(await target?.evaluate((e) => e.isConnected) === true, 'the folder tree was not redrawn under the drag');
    await target?.dispatchEvent('dragover', { dataTransfer: dt });
    await target?.dispatchEvent('drop', { dataTransfer: dt });
    await page.waitForSelector('.toast:has-text("moved to Archive")');
    // Once dropped, the tree is drawn again, with the new folder.
    await page.waitForSelector('#folders .fname:text-is("Elsewhere")');
    await rpc('folders.remove', { folderID: made.result.folderID });
    await page.waitForSelector('#folders .fname:text-is("Elsewhere")', { state: 'detached' });
    await openFolder('Archive');
    check((await page.locator('#list .row .subject').allTextContents()).includes(subject || ''), 'the dragged message is in Archive');
  });

  if (BIG) await step(`scroll a ${BIG}-message folder to its middle`, async () => {
    await openFolder('Big');
    for (let run = 0; run < 5; run++) {
      const ms = await page.evaluate(async (frac) => {
        const el = /** @type {HTMLElement} */ (document.querySelector('#list'));
        // @ts-ignore
        const list = window.basalt.list;
        const target = Math.floor(list.total * frac);
        const t0 = performance.now();
        el.scrollTop = target * list.rowH;
        await new Promise((resolve) => {
          const tick = () => {
            const row = el.querySelector(`.row[data-i="${target}"]`);
            if (row && row.dataset.id) resolve(0); else requestAnimationFrame(tick);
          };
          tick();
        });
        performance.measure('jump', { start: t0, end: performance.now() });
        return performance.now() - t0;
      }, 0.5 + run * 0.037);
      perf.jump.push(ms);
    }
    const info = await page.evaluate(() => {
      const el = /** @type {HTMLElement} */ (document.querySelector('#list'));
      return { h: el.scrollHeight, rows: el.querySelectorAll('.row').length, first: el.querySelector('.row[data-id]')?.getAttribute('aria-posinset') };
    });
    // @ts-ignore
    check(info.h >= BIG * 30, 'the scrollbar stands for the whole folder: ' + info.h);
    check(info.rows < 100, 'only the rows in view exist: ' + info.rows);
    check(Number(info.first) > BIG * 0.4, 'rows from the middle: ' + info.first);
    await shot(page, 'bigfolder-desktop-light');
  });

  await step('search with operators', async () => {
    await openFolder('Inbox');
    await page.keyboard.press('/');
    check(await page.evaluate(() => document.activeElement?.id === 'search'), '/ focuses the search');
    await page.fill('#search', 'subject:"weekly note" from:sender12');
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => document.querySelector('#count-line')?.textContent?.includes('found'));
    await page.waitForSelector('#list .row[data-id]');
    const subs = await page.locator('#list .row .subject').allTextContents();
    check(subs.length === 1 && subs[0] === 'Weekly note 12', 'search results: ' + JSON.stringify(subs));
    await page.fill('#search', 'subject:"weekly note" -from:sender12');
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => /^[1-9]\d* found/.test(document.querySelector('#count-line')?.textContent || ''));
    await page.waitForSelector('#list .row[data-id]');
    const neg = await page.locator('#list .row .subject').allTextContents();
    check(neg.length > 5 && !neg.includes('Weekly note 12') && neg.every((x) => x.startsWith('Weekly note')), 'negation: ' + JSON.stringify(neg));
    perf.search.push(await page.evaluate(() => performance.getEntriesByName('search').at(-1)?.duration || -1));
    await page.fill('#search', 'is:unread subject:Photo');
    await page.press('#search', 'Enter');
    await page.waitForSelector('#list .row .subject:text-is("Photo attached")');
    await page.selectOption('#search-scope', 'all');
    await page.fill('#search', 'in:Sent live delivery');
    await page.press('#search', 'Enter');
    await page.waitForSelector('#list .row .subject:text-is("Re: Live delivery")');
    await page.selectOption('#search-scope', 'here');
    await page.fill('#search', '');
    await page.waitForFunction(() => !document.querySelector('#count-line')?.textContent?.includes('found'));
  });

  await step('sort, quick filter, conversations', async () => {
    await openFolder('Inbox');
    await page.selectOption('#sort', 'subject');
    await page.waitForFunction(() => document.querySelector('#list .row[data-i="0"] .subject')?.textContent === 'Hostile HTML');
    await page.selectOption('#sort', 'arrival');
    await page.waitForFunction(() => document.querySelector('#list .row[data-i="0"] .subject')?.textContent === 'Live delivery');
    await page.click('#filter-attachments');
    await page.waitForFunction(() => document.querySelectorAll('#list .row[data-id]').length === 1);
    check(await page.textContent('#list .row[data-id] .subject') === 'Photo attached', 'attachments filter');
    await page.click('#filter-attachments');
    await page.waitForFunction(() => document.querySelectorAll('#list .row[data-id]').length > 5);
    const before = await page.locator('#list .row .subject:has-text("Planning the trip")').count();
    check(before === 3, 'three messages of the thread apart: ' + before);
    await page.click('#threads-btn');
    await page.waitForFunction(() => document.querySelectorAll('#list .row .subject').length > 0 && [...document.querySelectorAll('#list .row .subject')].filter((e) => e.textContent?.includes('Planning the trip')).length === 1);
    const row = page.locator('#list .row:has(.subject:has-text("Planning the trip"))');
    check((await row.locator('.count').textContent()) === '3', 'the thread folds into one row of 3');
    check((await row.getAttribute('aria-label') || await row.textContent() || '').includes('3 messages'), 'the count is announced');
    await row.click();
    await page.waitForSelector('.thread li:nth-child(3)');
    await shot(page, 'thread-desktop-light');
    // Conversations go with a quick filter and another order: the
    // unread ones by sender still show the thread once.
    const errorsBefore = await page.locator('.toast.error').count();
    await page.click('#filter-unread');
    await page.selectOption('#sort', 'from');
    await page.waitForFunction(() => document.querySelectorAll('#list .row[data-id]').length > 0 && !document.querySelector('#list .row.placeholder'));
    check(await page.locator('#list .row:has(.subject:has-text("Planning the trip"))').count() === 1, 'a thread is one row under a filter and a sort');
    check(await page.locator('.toast.error').count() === errorsBefore, 'no error for conversations with a filter and a sort');
    await page.selectOption('#sort', 'arrival');
    await page.click('#filter-unread');
    await page.click('#threads-btn');
    await page.waitForFunction(() => [...document.querySelectorAll('#list .row .subject')].filter((e) => e.textContent?.includes('Planning the trip')).length === 3);
  });

  await step('folders: create, rename, delete', async () => {
    await page.click('#new-folder');
    await page.fill('#dlg-in', 'Receipts');
    await page.click('#dialog-ok');
    await page.waitForSelector('#folders .fname:text-is("Receipts")');
    await page.hover('#folders .folder-row:has(.fname:text-is("Receipts"))');
    await page.click('#folders .folder-row:has(.fname:text-is("Receipts")) .folder-menu');
    await page.check('input[name="act"][value="rename"]');
    await page.click('#dialog-ok');
    await page.fill('#dlg-in', 'Invoices');
    await page.click('#dialog-ok');
    await page.waitForSelector('#folders .fname:text-is("Invoices")');
    await page.click('#folders .folder-row:has(.fname:text-is("Invoices")) .folder-menu');
    await page.check('input[name="act"][value="delete"]');
    await page.click('#dialog-ok');
    await page.click('#dialog-ok');
    await page.waitForSelector('#folders .fname:text-is("Invoices")', { state: 'detached' });
  });

  await step('attachments: preview, download, SVG not inline', async () => {
    await page.click('#list .row:has(.subject:text-is("Photo attached"))');
    await page.waitForSelector('.attachments li:has-text("dot.png") img.thumb');
    check(await page.locator('.attachments li:has-text("x.svg") img').count() === 0, 'no SVG preview');
    check(await page.locator('.attachments a[download="dot.png"]').count() === 1, 'a download link');
  });

  await step('list answers arriving out of order', async () => {
    // Two refreshes overlap (a change event while another is loading) and
    // the older answer comes back last: the rows must end up filled, not
    // as placeholders waiting for a scroll.
    let delayed = false;
    await page.route('**/rpc', async (route) => {
      if (!delayed && (route.request().postData() || '').includes('"messages.list"')) {
        delayed = true;
        await new Promise((r) => setTimeout(r, 700));
      }
      await route.continue();
    });
    try {
      await page.evaluate(async () => {
        // @ts-ignore
        const l = window.basalt.list;
        const first = l.refresh();
        await new Promise((r) => setTimeout(r, 100));
        await Promise.all([first, l.refresh()]);
      });
      check(delayed, 'the first list answer was held back');
      await page.waitForTimeout(200);
      const holes = await page.locator('#list .row.placeholder').count();
      check(holes === 0, 'no placeholder rows after overlapping refreshes: ' + holes);
      check(await page.locator('#list .row:has(.subject:text-is("Hostile text"))').count() === 1, 'the rows are there');
    } finally {
      await page.unroute('**/rpc');
    }
  });

  await step('hostile mail', async () => {
    const before = seen.requests.length;
    await page.click('#list .row:has(.subject:text-is("Hostile HTML"))');
    await page.waitForSelector('#msg-subject:text-is("Hostile HTML")');
    await page.waitForSelector('iframe.body-frame');
    await page.waitForTimeout(800);
    await page.click('#list .row:has(.subject:text-is("Hostile text"))');
    await page.waitForSelector('#body-text');
    const links = await page.locator('#body-text a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    check(links.every((h) => /^https?:/.test(h || '')), 'only http(s) links in plain text: ' + JSON.stringify(links));
    check(links.includes('https://example.org/ok'), 'a plain-text link is linked');
    await page.waitForTimeout(300);
    const frame = page.locator('iframe.body-frame');
    void frame;
    const hits = await control('/hits');
    check(hits.length === 0, 'no request reached the canary: ' + JSON.stringify(hits));
    check(seen.dialogs.length === 0, 'no dialog: ' + JSON.stringify(seen.dialogs));
    check(!seen.console.some((c) => c.includes('E2E-XSS-MARKER')), 'no script ran');
    const remote = seen.requests.slice(before).filter((u) => !u.startsWith(BASE) && !u.startsWith('data:') && !u.startsWith('blob:') && u !== 'about:srcdoc');
    check(remote.length === 0, 'no remote request without consent: ' + JSON.stringify(remote));
    await page.click('#list .row:has(.subject:text-is("Hostile HTML"))');
    await page.waitForSelector('iframe.body-frame');
    await shot(page, 'hostile-desktop-light');
  });

  await step('remote images only on consent, through the proxy', async () => {
    const before = seen.requests.length;
    await page.click('#list .row:has(.subject:text-is("Newsletter with images"))');
    await page.waitForSelector('#btn-show-images');
    await page.waitForTimeout(300);
    check((await control('/hits')).length === 0, 'nothing loaded before consent');
    await page.click('#btn-show-images');
    await page.waitForFunction(async () => !document.querySelector('#btn-show-images'));
    for (let i = 0; i < 50 && !(await control('/hits')).some((u) => u.includes('newsletter.png')); i++) await page.waitForTimeout(100);
    const hits = await control('/hits');
    check(hits.some((u) => u.includes('newsletter.png')), 'the image came through the proxy: ' + JSON.stringify(hits));
    check(!hits.some((u) => !u.includes('newsletter.png')), 'only the consented image was fetched: ' + JSON.stringify(hits));
    const remote = seen.requests.slice(before).filter((u) => !u.startsWith(BASE) && !u.startsWith('data:') && !u.startsWith('blob:'));
    check(remote.length === 0, 'the browser itself asked nothing remote: ' + JSON.stringify(remote));
  });

  await step('keyboard shortcuts', async () => {
    await openFolder('Inbox');
    await page.locator('#list').focus();
    await page.keyboard.press('j');
    await page.keyboard.press('j');
    await page.keyboard.press('o');
    await page.waitForSelector('#msg-subject');
    // @ts-ignore
    const first = await page.evaluate(() => window.basalt.list.openID);
    await page.keyboard.press('j');
    // @ts-ignore
    await page.waitForFunction((f) => window.basalt.list.openID !== f && document.querySelector('#msg-subject'), first);
    await page.keyboard.press('s');
    await page.waitForSelector('#list .row.cursor.flagged');
    await page.keyboard.press('?');
    await page.waitForSelector('dialog[open] .keys');
    await shot(page, 'shortcuts-desktop-light');
    await page.keyboard.press('Escape');
    await page.waitForSelector('dialog[open]', { state: 'detached', timeout: 2000 }).catch(() => {});
    check(!(await page.locator('dialog[open]').count()), 'Escape closes the overlay');
    await page.keyboard.press('c');
    await page.waitForSelector('#c-to');
    await page.keyboard.type('j');
    check(await page.inputValue('#c-to') === 'j', 'keys go to the field being typed in');
    await page.keyboard.press('Escape');
    await page.keyboard.press('Escape');
    await page.waitForSelector('.compose', { state: 'detached' });
    await page.keyboard.press('g');
    await page.keyboard.press('i');
    await page.waitForFunction(() => document.querySelector('#folder-title')?.textContent === 'Inbox');
  });

  await step('contacts: add, edit, export', async () => {
    await page.click('#contacts-btn');
    await page.click('#contact-new');
    await page.fill('#ct-name', 'Erin Example');
    await page.fill('#ct-emails', 'erin@example.net');
    await page.click('#ct-save');
    await page.waitForSelector('.contact:has-text("Erin Example")');
    await page.click('.contact:has-text("Erin Example")');
    await page.fill('#ct-org', 'Example Ltd');
    await page.fill('#ct-name', 'Erin Q. Example');
    await page.click('#ct-save');
    await page.waitForSelector('.contact:has-text("Erin Q. Example")');
    await shot(page, 'contacts-desktop-light');
    await axeApp(page, 'contacts');
    const dl = page.waitForEvent('download');
    await page.click('#vcard-export');
    const d = await dl;
    const text = await (await d.createReadStream()).toArray().then((b) => Buffer.concat(b).toString());
    check(text.includes('BEGIN:VCARD') && text.includes('Erin Q. Example'), 'exported vCard');
    // Imported from a file: a vCard 3.0 and one that is not a card.
    await page.setInputFiles('#vcard-file', { name: 'friends.vcf', mimeType: 'text/vcard',
      buffer: Buffer.from('BEGIN:VCARD\r\nVERSION:3.0\r\nN:Lovelace;Ada;;;\r\nFN:Ada Lovelace\r\nEMAIL;TYPE=INTERNET:ada@example.net\r\nEND:VCARD\r\n' +
        'BEGIN:VCARD\r\nVERSION:4.0\r\nEND:VCARD\r\n') });
    await page.waitForSelector('.toast:has-text("1 imported, 1 skipped")');
    await page.waitForSelector('.contact:has-text("Ada Lovelace")');
  });

  await step('compose: autocomplete from contacts and recent recipients', async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('c');
    await page.waitForSelector('#c-to');
    // A contact, by a part of its name's address, chosen with the keys.
    await page.type('#c-to', 'eri');
    await page.waitForSelector('#c-to-list:not([hidden]) li:has-text("erin@example.net")');
    check(await page.getAttribute('#c-to', 'aria-expanded') === 'true', 'the combobox says it is open');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await page.waitForSelector('.rcpt .chip:has-text("erin@example.net")');
    // A recent recipient (the reply went to bob), chosen with the mouse.
    await page.type('#c-to', 'bo');
    await page.waitForSelector('#c-to-list:not([hidden]) li:has-text("bob@example.org")');
    await page.click('#c-to-list li:has-text("bob@example.org")');
    await page.waitForSelector('.rcpt .chip:has-text("bob@example.org")');
    check(await page.locator('#c-to-list').isHidden(), 'the list closes once chosen');
    await page.click('#c-discard');
  });

  await step('desktop notifications, opt-in', async () => {
    // The browser's own permission prompt cannot be clicked headless: it
    // is granted to the page, and what the app shows is recorded.
    await ctx.grantPermissions(['notifications'], { origin: BASE });
    await page.evaluate(() => {
      // @ts-ignore
      window.__shown = [];
      class Recorder {
        static permission = 'granted';
        static requestPermission() { return Promise.resolve('granted'); }
        /** @param {string} title @param {NotificationOptions} [o] */
        // @ts-ignore
        constructor(title, o) { window.__shown.push({ title, body: o?.body }); }
      }
      // @ts-ignore
      window.Notification = Recorder;
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    });
    // Off by default: new mail shows nothing.
    await control('/deliver', { From: 'Dan <dan@example.net>', To: 'alice@example.org', Subject: 'Unnoticed', Body: 'one' });
    await page.waitForSelector('#list .row[data-id] .subject:text-is("Unnoticed")', { timeout: 10000 });
    // @ts-ignore
    check((await page.evaluate(() => window.__shown.length)) === 0, 'no notification before opting in');
    await page.click('#settings-btn');
    await page.check('#notify');
    await page.keyboard.press('Escape');
    await control('/deliver', { From: 'Dan <dan@example.net>', To: 'alice@example.org', Subject: 'Noticed', Body: 'two' });
    // @ts-ignore
    await page.waitForFunction(() => window.__shown.length > 0, null, { timeout: 10000 });
    // @ts-ignore
    const shown = await page.evaluate(() => window.__shown);
    check(shown.length === 1 && /new/i.test(shown[0].title), 'one notification for the new message: ' + JSON.stringify(shown));
    await page.click('#settings-btn');
    await page.uncheck('#notify');
    await page.keyboard.press('Escape');
    // @ts-ignore
    await page.evaluate(() => { delete document.hidden; });
  });

  await step('settings: vacation', async () => {
    await page.click('#settings-btn');
    await page.waitForSelector('#v-on');
    await page.check('#v-on');
    await page.fill('#v-subject', 'Away this week');
    await page.fill('#v-body', 'Back on Monday.');
    await page.click('#set-vacation-save');
    await page.waitForSelector('.toast:has-text("Vacation reply saved")');
    // Saved again: the notice is renewed, not stacked; and never more
    // than three stand over the page.
    await page.click('#set-vacation-save');
    await page.waitForTimeout(300);
    check(await page.locator('.toast:has-text("Vacation reply saved")').count() === 1, 'one notice for the same words');
    check(await page.locator('.toast').count() <= 3, 'at most three notices');
    const v = await control('/vacation?user=alice@example.org');
    check(v.enabled === true && v.subject === 'Away this week', 'the server holds the vacation: ' + JSON.stringify(v));
    await shot(page, 'settings-desktop-light');
    await axeApp(page, 'settings');
    await page.keyboard.press('Escape');
  });

  await step('dark theme screenshots and axe', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.evaluate(() => { document.documentElement.dataset.theme = ''; });
    await openFolder('Inbox');
    await page.click('#list .row:has(.subject:text-is("Photo attached"))');
    await page.waitForSelector('#msg-subject');
    await shot(page, 'reader-desktop-dark');
    await axeApp(page, 'reader (dark)');
    await page.keyboard.press('c');
    await page.waitForSelector('#c-to');
    await shot(page, 'compose-desktop-dark');
    await page.click('#c-discard');
  });

  await step('phone layout', async () => {
    const phone = await ctx.newPage();
    const ps = watch(phone);
    await phone.setViewportSize({ width: 390, height: 844 });
    for (const scheme of /** @type {const} */ (['light', 'dark'])) {
      await phone.emulateMedia({ colorScheme: scheme });
      await phone.goto(BASE + '/mail/');
      await phone.waitForSelector('#list .row[data-id]');
      await phone.evaluate(() => { document.documentElement.dataset.theme = ''; });
      await shot(phone, `inbox-phone-${scheme}`);
      if (scheme === 'light') await axe(phone, 'inbox (phone)');
      await phone.locator('#list').evaluate((el) => { el.scrollTop = 600; });
      await phone.waitForTimeout(150);
      const top = await phone.locator('#list').evaluate((el) => el.scrollTop);
      await phone.locator('#list .row[data-id]').nth(14).click();
      await phone.waitForSelector('#msg-subject');
      check(await phone.locator('#list-pane').isHidden(), 'the reader replaces the list');
      await shot(phone, `reader-phone-${scheme}`);
      await phone.click('.reader-bar .only-phone');
      await phone.waitForSelector('#list-pane', { state: 'visible' });
      const after = await phone.locator('#list').evaluate((el) => el.scrollTop);
      check(Math.abs(after - top) < 2, `back keeps the scroll position: ${top} then ${after}`);
      await phone.click('#drawer-btn');
      await phone.waitForTimeout(250);
      await shot(phone, `folders-phone-${scheme}`);
      await phone.keyboard.press('Escape');
    }
    // The medium width: the folders in a drawer.
    await phone.emulateMedia({ colorScheme: 'light' });
    await phone.setViewportSize({ width: 900, height: 800 });
    await phone.waitForTimeout(100);
    check(await phone.locator('#drawer-btn').isVisible(), 'a drawer button at medium width');
    await shot(phone, 'inbox-medium-light');
    await phone.click('#drawer-btn');
    await phone.waitForTimeout(250);
    await shot(phone, 'drawer-medium-light');
    await phone.keyboard.press('Escape');
    check(ps.errors.length === 0, 'phone page errors: ' + ps.errors.join('; '));
    await phone.close();
  });

  await step('session expiry keeps the draft', async () => {
    await page.emulateMedia({ colorScheme: 'light' });
    await page.keyboard.press('c');
    await page.waitForSelector('#c-to');
    await page.fill('#c-subject', 'Kept across a new login');
    await page.fill('#c-body', 'precious words');
    await page.waitForTimeout(300);
    // The session ends on the server (as an expiry would).
    await page.evaluate(() => fetch('/rpc', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': sessionStorage.getItem('basalt.csrf') || '' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'logout', params: {} }) }));
    await page.fill('#c-body', 'precious words, more');
    await page.waitForSelector('#login:not([hidden]) #password', { timeout: 10000 });
    check((await page.textContent('#login')).includes('draft is kept'), 'the login says the draft is kept');
    await page.fill('#password', 'password one');
    await page.click('#login-btn');
    await page.waitForSelector('#login', { state: 'hidden' });
    check(await page.inputValue('#c-subject') === 'Kept across a new login', 'the compose is still open');
    check((await page.inputValue('#c-body')).startsWith('precious words, more'), 'the words are kept');
    await page.click('#c-discard');
  });

  await step('share a folder, revoke a share', async () => {
    await page.click('#folders .folder-row:has(.fname:text-is("Projects")) .folder-menu');
    await page.check('input[name="act"][value="share"]');
    await page.click('#dialog-ok');
    await page.fill('#share-who', 'bob@example.org');
    await page.click('#dialog-ok');
    await page.waitForSelector('.toast:has-text("Shared")');
    await page.click('#folders .folder-row:has(.fname:text-is("Projects")) .folder-menu');
    await page.check('input[name="act"][value="share"]');
    await page.click('#dialog-ok');
    await page.fill('#share-who', '@example.org');
    await page.check('input[name="access"][value="write"]');
    await page.click('#dialog-ok');
    await page.waitForSelector('.toast:has-text("Shared")');
    await page.click('#folders .folder-row:has(.fname:text-is("Projects")) .folder-menu');
    await page.check('input[name="act"][value="share"]');
    await page.click('#dialog-ok');
    await page.waitForSelector('#share-list li:has-text("bob@example.org")');
    await shot(page, 'sharing-desktop-light');
    await axeApp(page, 'sharing');
    await page.click('#share-list li:has-text("Everyone at example.org") button');
    await page.waitForSelector('.toast:has-text("Access revoked")');
    check(await page.locator('#share-list li:has-text("Everyone")').count() === 0, 'the domain share is gone');
    await page.keyboard.press('Escape');
  });

  await step('log out', async () => {
    await page.click('#logout-btn');
    await page.waitForSelector('#username');
    const r = await page.evaluate(() => fetch('/rpc', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'meta', params: {} }) }).then((r) => r.json()));
    check(!!r.error, 'the session is gone');
  });

  await step('what others share shows in the tree', async () => {
    await page.fill('#username', 'bob@example.org');
    await page.fill('#password', 'password one');
    await page.click('#login-btn');
    await page.waitForSelector('#folders .nav-h');
    const shared = page.locator('#folders .folder:has(.fname:text-is("Projects (alice@example.org)"))');
    check(await shared.count() === 1, 'alice\'s folder is in bob\'s tree, with its owner');
    // Opened, it lists alice's messages, and bob reads one.
    await shared.click();
    await page.waitForFunction(() => document.querySelector('#folder-title')?.textContent === 'Projects');
    await page.waitForSelector('#list .row[data-id]');
    const subject = (await page.locator('#list .row[data-id] .subject').first().textContent()) || '';
    check(subject !== '', 'alice\'s messages are listed for bob');
    await page.click('#list .row[data-id] >> nth=0');
    await page.waitForFunction((s) => document.querySelector('#msg-subject')?.textContent === s, subject);
    await page.waitForSelector('#body-text, iframe.body-frame');
    check(await page.locator('.toast.error, .toast:has-text("not found")').count() === 0, 'no error toast');
    await shot(page, 'shared-with-me-desktop-light');
    await page.click('#logout-btn');
    await page.waitForSelector('#username');
  });

  await step('performance over runs', async () => {
    for (let i = 0; i < 4; i++) {
      const p = await ctx.newPage();
      await p.goto(BASE + '/mail/');
      await p.evaluate(() => localStorage.clear());
      perf.login.push(await login(p));
      await p.click('#list .row[data-id] >> nth=3');
      await p.waitForSelector('#msg-subject');
      perf.open.push(await p.evaluate(() => performance.getEntriesByName('open').at(-1)?.duration || -1));
      await p.fill('#search', 'from:sender3 weekly');
      await p.press('#search', 'Enter');
      await p.waitForFunction(() => performance.getEntriesByName('search').length > 0);
      perf.search.push(await p.evaluate(() => performance.getEntriesByName('search').at(-1)?.duration || -1));
      await p.close();
    }
  });

  const errs = seen.console.filter((c) => c.startsWith('error') && !c.includes('Failed to load resource'));
  for (const c of errs) console.log('console ' + c);
  check(seen.errors.length === 0, 'page errors: ' + seen.errors.join('; '));
  const fmt = (xs) => (xs = xs.filter((x) => x >= 0)).length ? `p50 ${p50(xs).toFixed(0)} ms over ${xs.length} (${xs.map((x) => x.toFixed(0)).join(', ')})` : 'not measured';
  console.log(`perf login → inbox of 50: ${fmt(perf.login)}`);
  console.log(`perf open a message: ${fmt(perf.open)}`);
  console.log(`perf jump to the middle of ${BIG}: ${fmt(perf.jump)}`);
  console.log(`perf search (browser round trip): ${fmt(perf.search)}`);
  console.log(`screenshots: ${SHOTS}`);
} catch (e) {
  await shot(page, 'failure').catch(() => {});
  console.log('console:\n  ' + seen.console.slice(-30).join('\n  '));
  console.log('page errors:\n  ' + seen.errors.join('\n  '));
  await ctx.close();
  process.exit(1);
}
await ctx.close();
