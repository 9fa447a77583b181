// The dashboard in a real headless browser: playwright-core driving the
// system's Chromium (Debian's `chromium`; .ci/run installs it). Skips, saying
// why, only where no Chromium exists.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { adminUrl } from '../admin-helpers.js';
import { FIXTURES, startCorral, waitFor } from '../helpers.js';

const APP = path.join(FIXTURES, 'app.cjs');
const CHROMIUM = [process.env.CORRAL_TEST_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
const skip = CHROMIUM ? false : 'no Chromium found (apt-get install chromium, or set CORRAL_TEST_CHROMIUM)';

/** A fresh browser with every background service off: this machine has no network beyond loopback. */
async function browser(t) {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(path.join(os.tmpdir(), 'corral-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  return context;
}

/** A page that records console errors and failed loads. */
async function openPage(context, url) {
  const page = await context.newPage();
  const problems = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
  await page.goto(url.href);
  return { page, problems };
}

const rowPids = (page) => page.$$eval('#workers tr', (rows) => rows.map((r) => ({ slot: r.dataset.slot, pid: r.dataset.pid, state: r.dataset.state })));

test('dashboard: loads without console errors, one row per worker, and a kill -9 shows the new pid without a reload', { skip, timeout: 60000 }, async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--admin', '0']);
  const url = await adminUrl(c);
  await c.ready(2);
  const context = await browser(t);
  const { page, problems } = await openPage(context, url);
  await page.waitForFunction(() => document.querySelectorAll('#workers tr[data-state="ready"]').length === 2, null, { timeout: 10000 });
  const status = await c.status();
  const rows = await rowPids(page);
  assert.deepEqual(rows.map((r) => [r.slot, r.pid]), status.workers.map((w) => [String(w.slot), String(w.pid)]));
  assert.equal(await page.textContent('#ready'), '2/2 ready');
  // Sparklines draw once a few samples exist.
  await page.waitForFunction(() => document.querySelectorAll('#workers polyline').length >= 2, null, { timeout: 10000 });

  const victim = status.workers[0];
  process.kill(victim.pid, 'SIGKILL');
  await page.waitForFunction(
    ({ slot, pid }) => {
      const row = document.querySelector(`#workers tr[data-slot="${slot}"]`);
      return row && row.dataset.pid !== String(pid) && row.dataset.state === 'ready';
    },
    { slot: victim.slot, pid: victim.pid },
    { timeout: 5000 },
  );
  const after = await rowPids(page);
  const replacement = (await c.status()).workers.find((w) => w.slot === victim.slot);
  assert.equal(after.find((r) => r.slot === String(victim.slot)).pid, String(replacement.pid));
  assert.equal(await page.textContent(`#workers tr[data-slot="${victim.slot}"] td:nth-child(5)`), '1', 'the restarts column counts it');
  assert.equal(await page.isVisible('#actions'), false, 'no action buttons without --admin-actions');
  assert.deepEqual(problems, []);
});

test('dashboard with --admin-actions and a token: asks for the token, then scales and reloads from the buttons', { skip, timeout: 60000 }, async (t) => {
  const token = 'dashboard-token-0123456789';
  const c = startCorral(t, [APP, '-w', '1', '--admin', '0', '--admin-actions', '--admin-token', token]);
  const url = await adminUrl(c);
  await c.ready(1);
  const context = await browser(t);
  const { page, problems } = await openPage(context, url);
  await page.waitForSelector('#login', { state: 'visible' });
  await page.fill('#token', token);
  await page.click('#login button');
  await page.waitForFunction(() => document.querySelectorAll('#workers tr[data-state="ready"]').length === 1, null, { timeout: 10000 });
  assert.equal(await page.isVisible('#actions'), true);

  await page.click('#up');
  await page.waitForFunction(() => /Scaled: 2 workers ready/.test(document.getElementById('message').textContent), null, { timeout: 15000 });
  await waitFor(async () => (await c.status()).totals.ready === 2, 5000, 'two workers');
  await page.waitForFunction(() => document.querySelectorAll('#workers tr[data-state="ready"]').length === 2, null, { timeout: 5000 });

  await page.click('#reload');
  await page.waitForFunction(() => /Reloaded: generation 2/.test(document.getElementById('message').textContent), null, { timeout: 20000 });
  assert.ok((await c.status()).workers.every((w) => w.generation === 2));
  assert.deepEqual(problems, []);
});
