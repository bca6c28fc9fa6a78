// What the browser tests do in a page: log in through the form, and check
// accessibility with axe-core (pinned in package.json) injected into the
// page.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { PASSWORDS } from './harness.mjs';

const require = createRequire(import.meta.url);
const AXE_SOURCE = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Logs in through the login form at baseURL and waits for the live
 * connection. The server lets an address try 10 logins at once and one
 * more every 3 s; a suite that opens many pages quickly can meet that
 * limit, and then, like a person, waits the time the form names and
 * submits again (at most 3 times).
 */
export async function login(page, baseURL, user, password = PASSWORDS[user]) {
  await page.goto(baseURL + '/');
  await page.fill('#login-user', user);
  await page.fill('#login-password', password);
  const connected = '[data-testid=conn-status][data-state=connected]';
  const limited = 'form .error[role=alert]:has-text("retry after")';
  for (let attempt = 1; ; attempt++) {
    await page.click('button[type=submit]');
    await page.waitForSelector(`${connected}, ${limited}`, { timeout: 30_000 }).catch(() => {});
    const refusal = await page.locator(limited).textContent({ timeout: 100 }).catch(() => null);
    if (refusal === null || attempt === 3) break;
    const wait = Number(/retry after (\d+) s/.exec(refusal)?.[1] ?? 3);
    await page.waitForTimeout((wait + 0.5) * 1000);
  }
  await waitConnected(page);
}

/**
 * Waits for the live connection (after a login, a reload or a server
 * restart). On a timeout the error says what the status showed and what the
 * page logged, so a failure in CI can be read without re-running it.
 */
export async function waitConnected(page, timeout = 30_000) {
  try {
    await page.waitForSelector('[data-testid=conn-status][data-state=connected]', { timeout });
  } catch (err) {
    const status = await page
      .locator('[data-testid=conn-status]')
      .evaluate((el) => `${el.dataset.state} "${el.textContent}"`)
      .catch(() => 'absent');
    err.message += `\nconnection status: ${status}\npage log:\n${(page.__console ?? []).join('\n')}`;
    throw err;
  }
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
  // The last console lines, for waitConnected's error.
  page.on('console', (msg) => (page.__console = [...(page.__console ?? []), `${new Date().toISOString()} ${msg.type()}: ${msg.text()}`].slice(-30)));
  page.on('websocket', (ws) => {
    const note = (what) => (page.__console = [...(page.__console ?? []), `${new Date().toISOString()} ws ${what}`].slice(-30));
    note(`open ${ws.url()}`);
    ws.on('close', () => note('closed'));
    ws.on('socketerror', (e) => note(`error ${e}`));
  });
  return page;
}
