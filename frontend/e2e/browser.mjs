// What the browser tests do in a page: log in through the form, and check
// accessibility with axe-core (pinned in package.json) injected into the
// page.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { PASSWORDS } from './harness.mjs';

const require = createRequire(import.meta.url);
const AXE_SOURCE = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');

/** Logs in through the login form at baseURL and waits for the live connection. */
export async function login(page, baseURL, user, password = PASSWORDS[user]) {
  await page.goto(baseURL + '/');
  await page.fill('#login-user', user);
  await page.fill('#login-password', password);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=conn-status][data-state=connected]', { timeout: 20_000 });
}

/** Runs axe-core on the page as it is now; fails with the violations, each with its elements. */
export async function assertAccessible(page, screen) {
  // Evaluated over CDP, not as a <script> tag: the server's CSP (default-src
  // 'self') rightly refuses inline scripts.
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(`${AXE_SOURCE};window.axe = axe; 0`);
  const violations = await page.evaluate(async () => {
    const res = await window.axe.run(document, { resultTypes: ['violations'] });
    return res.violations.map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }));
  });
  assert.deepEqual(violations, [], `axe violations on ${screen}:\n${JSON.stringify(violations, null, 2)}`);
}

export const DESKTOP = { width: 1366, height: 768 };
export const PHONE = { width: 390, height: 844 };

/**
 * Opens a page in a browser context of its own (closed by the caller's
 * contexts list), recording uncaught page errors in page.__errors.
 */
export async function openPage(browser, contexts, { viewport = DESKTOP, colorScheme = 'light' } = {}) {
  const ctx = await browser.newContext({ viewport, colorScheme });
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (err) => (page.__errors = [...(page.__errors ?? []), err.message]));
  return page;
}
