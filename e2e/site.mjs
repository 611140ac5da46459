// The site in a real browser. Run by server/site_e2e_test.go
// (TestSiteBrowser), which starts Basalt with registration open and the
// control server (which tells the captcha's answer: the Go test reads it
// from the site's test hook, never from Basalt over HTTP).
import { launch, watch, shot, axe, control, check, step, BASE } from './lib.mjs';

const ctx = await launch();
const page = ctx.pages()[0] || await ctx.newPage();
const seen = watch(page);
const pages = [['home', '/'], ['login', '/login'], ['register', '/register'], ['password', '/password'], ['contact', '/contact'], ['404', '/no/such/page']];

/** Both widths and both themes of the page as it is now. @param {string} name */
async function looks(name) {
  for (const [w, h, tag] of [[1440, 900, 'desktop'], [390, 844, 'phone']]) {
    await page.setViewportSize({ width: w, height: h });
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: /** @type {'light'|'dark'} */ (scheme) });
      await axe(page, `${name} ${tag} ${scheme}`);
      await shot(page, `site-${name}-${tag}-${scheme}`);
    }
  }
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.emulateMedia({ colorScheme: 'light' });
}

/** The captcha's answer, from the Go test. */
async function answer() {
  const id = await page.inputValue('#captcha-id');
  const r = await control('/captcha?id=' + encodeURIComponent(id));
  return r.answer;
}

try {
  await step('every page: axe, screenshots', async () => {
    for (const [name, path] of pages) {
      const r = await page.goto(BASE + path);
      check(!!r && r.status() === (name === '404' ? 404 : 200), `${path}: ${r && r.status()}`);
      await looks(name);
    }
  });

  await step('register: a wrong answer is shown under its field, with the focus', async () => {
    await page.goto(BASE + '/register');
    await page.fill('#username', 'zoe__x');
    await page.fill('#password', 'a long enough password');
    await page.fill('#password2', 'a long enough password');
    await page.fill('#captcha', await answer());
    await page.click('#register-form button[type=submit]');
    await page.waitForSelector('#username-error:not([hidden])');
    check(await page.evaluate(() => document.activeElement?.id) === 'username', 'focus on the wrong field');
    check(await page.inputValue('#password') === 'a long enough password', 'password kept');
    await looks('register-errors');
  });

  await step('register: three steps', async () => {
    await page.fill('#username', 'zoe');
    await page.fill('#captcha', await answer());
    await page.click('#register-form button[type=submit]');
    await page.waitForURL(BASE + '/register/plan');
    check((await page.textContent('#address')) === 'zoe@example.org', 'address on step 2');
    await looks('plan');
    await page.click('label:has-text("Standard")');
    await page.click('#plan-form button[type=submit]');
    await page.waitForURL(BASE + '/register/done');
    check((await page.textContent('#address')) === 'zoe@example.org', 'address on step 3');
    await looks('done');
  });

  await step('log in on the site, the webmail shows the welcome message', async () => {
    await page.click('#done-login');
    await page.waitForURL(BASE + '/login');
    await page.fill('#username', 'zoe');
    await page.fill('#password', 'a long enough password');
    await page.click('#login-form button[type=submit]');
    await page.waitForURL((u) => u.pathname === '/mail/');
    // The webmail takes the session the site opened (its CSRF token in
    // the address's fragment, which it clears): no second login.
    await page.waitForSelector('#list .row[data-id]', { timeout: 10000 });
    check(await page.evaluate(() => location.hash) === '', 'the token left in the address');
    await page.waitForSelector('#list .row[data-id] .subject:text-is("Welcome to Basalt")', { timeout: 10000 });
    await shot(page, 'site-webmail-welcome');
  });

  check(seen.errors.length === 0, 'page errors: ' + seen.errors.join('; '));
  const foreign = seen.requests.filter((u) => !u.startsWith(BASE) && !u.startsWith('data:'));
  check(foreign.length === 0, 'requests elsewhere: ' + foreign.join(' '));
} finally {
  await ctx.close();
}
