// What the browser tests share: Chromium started as the machine needs
// (Debian's chromium, headless, no background networking), a page that
// records console output, dialogs and every request it makes, axe-core,
// screenshots, and the control server of the Go test.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

export const BASE = process.env.BASE_URL || 'http://127.0.0.1:8080';
export const CONTROL = process.env.CONTROL_URL || '';
export const SHOTS = process.env.SHOTS || join(tmpdir(), 'basalt-shots');
mkdirSync(SHOTS, { recursive: true });

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export async function launch() {
  const args = ['--headless=new', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run', '--disable-quic', '--disable-default-apps', '--disable-features=Translate,OptimizationHints,MediaRouter'];
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  // A fresh profile for each run (launchPersistentContext would keep one; launch makes a temporary one, but the flag makes it explicit).
  const userDataDir = mkdtempSync(join(tmpdir(), 'basalt-chromium-'));
  const ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args,
    viewport: { width: 1440, height: 900 }, acceptDownloads: true,
  });
  return ctx;
}

/**
 * Watches a page: console messages, dialogs (dismissed and counted), and
 * requests (every URL).
 * @param {import('playwright-core').Page} page
 */
export function watch(page) {
  const w = { console: /** @type {string[]} */ ([]), dialogs: /** @type {string[]} */ ([]), requests: /** @type {string[]} */ ([]), errors: /** @type {string[]} */ ([]) };
  page.on('console', (m) => w.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => w.errors.push(String(e)));
  page.on('dialog', (d) => { w.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('request', (r) => w.requests.push(r.url()));
  for (const f of page.frames()) void f;
  return w;
}

/** @param {import('playwright-core').Page} page @param {string} name */
export async function shot(page, name) {
  const p = join(SHOTS, name + '.png');
  await page.screenshot({ path: p });
  return p;
}

/**
 * axe-core on the page as it is: fails on serious or critical violations.
 * @param {import('playwright-core').Page} page @param {string} screen
 */
export async function axe(page, screen, fatal = []) {
  await page.evaluate(axeSource);
  const res = await page.evaluate(async () => {
    // @ts-ignore
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ' ' + (n.failureSummary || '').replace(/\s+/g, ' ').slice(0, 200)) }));
  });
  const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical' || fatal.includes(v.id));
  for (const v of res) console.log(`axe ${screen}: ${v.impact} ${v.id}: ${v.help}\n    ${v.nodes.join('\n    ')}`);
  if (bad.length) throw new Error(`axe on ${screen}: ${bad.length} violations (serious, critical or ${fatal.join(', ') || 'none named'})`);
}

/** @param {string} path @param {any} [body] */
export async function control(path, body) {
  const r = await fetch(CONTROL + path, body ? { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } } : {});
  if (!r.ok) throw new Error(`control ${path}: ${r.status} ${await r.text()}`);
  return r.status === 204 ? null : r.json();
}

/** @param {boolean} cond @param {string} what */
export function check(cond, what) { if (!cond) throw new Error('failed: ' + what); }

/** Runs a named step and prints how long it took. */
export async function step(name, f) {
  const t0 = Date.now();
  try { await f(); } catch (e) { console.log(`FAIL ${name} (${Date.now() - t0} ms): ${e.stack || e}`); throw e; }
  console.log(`ok   ${name} (${Date.now() - t0} ms)`);
}

/** @param {number[]} xs */
export function p50(xs) { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; }
