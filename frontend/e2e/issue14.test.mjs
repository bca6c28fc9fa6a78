// Browser tests of what issue 14 asked for (presence, accessibility, small
// defects), against the real server like dashboard.test.mjs. Accessibility
// is checked with axe-core (pinned in package.json) injected into the page:
// zero violations on every screen.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assertAccessible, login as loginAt, openPage, waitConnected } from './browser.mjs';
import { PASSWORDS, startStack, waitFor } from './harness.mjs';

let stack;
let browser;
const contexts = [];

function newPage(opts) {
  return openPage(browser, contexts, opts);
}

function login(page, user) {
  return loginAt(page, stack.baseURL, user);
}

function counts(page) {
  return page.locator('[data-testid=room-counts]').textContent();
}

describe('issue 14 in the browser', { timeout: 600_000 }, () => {
  before(async () => {
    stack = await startStack({ sensors: 4, rate: 1 });
    browser = await stack.launchBrowser();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    if (stack) await stack.stop();
  });

  it('keeps online counts live for everyone, oneself included', { timeout: 120_000 }, async () => {
    const a = await newPage();
    await login(a, 'alice');
    await a.waitForSelector('[data-testid=room-counts]');
    // The first test: alice is alone (nobody else logged in) and counts herself.
    await waitFor('alice sees herself online', async () => /\b1 online/.test(await counts(a)));
    const b = await newPage();
    await login(b, 'bob');
    await waitFor('alice sees bob come online', async () => /\b2 online/.test(await counts(a)));
    await waitFor('bob sees both', async () => /\b2 online/.test(await counts(b)));
    // Bob goes; after the presence grace (10 s) alice sees it.
    await b.context().close();
    await waitFor('alice sees bob go offline', async () => /\b1 online/.test(await counts(a)), { timeoutMs: 30_000 });
    assert.match(await counts(a), /^\s*3 members, 1 online/);
  });

  it('has no axe violations on the login screen, the dashboard, a sensor, chat and the dark theme', { timeout: 120_000 }, async () => {
    const page = await newPage();
    await page.goto(stack.baseURL + '/');
    await page.waitForSelector('#login-user');
    await assertAccessible(page, 'login');
    await login(page, 'alice');
    await waitFor('tiles', async () => (await page.locator('li.tile').count()) >= 4);
    await assertAccessible(page, 'dashboard');
    await page.locator('li.tile button').first().click();
    await page.waitForSelector('.chart[data-points]');
    await assertAccessible(page, 'sensor detail');
    await page.click('.directory summary');
    await assertAccessible(page, 'rooms popover');
    await page.click('[data-testid=theme-toggle]');
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    await assertAccessible(page, 'dark theme');
    // The choice survives a reload.
    await page.reload();
    await waitConnected(page);
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');

    const phone = await newPage({ viewport: { width: 390, height: 844 } });
    await login(phone, 'bob');
    await phone.click('nav.tabs button:has-text("Chat")');
    await assertAccessible(phone, 'chat at phone width');
    await phone.click('nav.tabs button:has-text("Alerts")');
    await assertAccessible(phone, 'alerts at phone width');
    assert.deepEqual(page.__errors ?? [], []);
  });

  it('says what is wrong with a chat command and closes the Rooms popover with Esc or a click outside', { timeout: 60_000 }, async () => {
    const page = await newPage();
    await login(page, 'bob');
    await page.fill('#chat-input', '/join bad room!');
    await page.press('#chat-input', 'Enter');
    await page.waitForSelector('.chat .notice.error:has-text("is not a valid room name")');

    await page.click('.directory summary');
    assert.equal(await page.locator('.directory[open]').count(), 1);
    await page.keyboard.press('Escape');
    assert.equal(await page.locator('.directory[open]').count(), 0);
    assert.ok(await page.evaluate(() => document.activeElement?.matches('.directory summary')));
    await page.click('.directory summary');
    await page.click('.messages');
    assert.equal(await page.locator('.directory[open]').count(), 0);

    // A direct message to nobody leaves no conversation behind.
    await page.fill('#chat-input', '/msg nobody-here hello');
    await page.press('#chat-input', 'Enter');
    await page.waitForSelector('.chat .notice.error');
    await waitFor('no phantom conversation', async () => (await page.locator('.view-tabs button:has-text("@nobody-here")').count()) === 0);
  });

  it('does not flash "Live updates paused" on the way in', { timeout: 60_000 }, async () => {
    const page = await newPage();
    await page.goto(stack.baseURL + '/');
    await page.evaluate(() => {
      window.__sawStale = false;
      new MutationObserver(() => {
        if (document.querySelector('.stale-banner')) window.__sawStale = true;
      }).observe(document.body, { subtree: true, childList: true });
    });
    await page.fill('#login-user', 'alice');
    await page.fill('#login-password', PASSWORDS.alice);
    await page.click('button[type=submit]');
    await waitConnected(page);
    assert.equal(await page.evaluate(() => window.__sawStale), false);
  });

  it('filters whole ids when asked, keeps the filter over a reload, and explains odd detail pages', { timeout: 90_000 }, async () => {
    await stack.publish('sensors/s-10/temperature', '21.5');
    const page = await newPage();
    await login(page, 'bob');
    await waitFor('s-10 tile', async () => (await page.locator('li.tile[data-sensor="s-10"]').count()) === 1);
    await page.fill('#sensor-filter', 's-1');
    await page.check('#sensor-filter-whole');
    await waitFor('only s-1', async () => {
      const ids = await page.locator('li.tile').evaluateAll((els) => els.map((e) => e.dataset.sensor));
      return ids.length > 0 && ids.every((id) => id === 's-1');
    });
    await page.reload();
    await waitConnected(page);
    assert.equal(await page.inputValue('#sensor-filter'), 's-1');
    assert.ok(await page.isChecked('#sensor-filter-whole'));
    await page.selectOption('#sensor-sort', 'severity');
    await assertAccessible(page, 'filtered grid');

    // Bob (analyst) opens a sensor: no commands, and the page says why;
    // the chart has a text alternative.
    await page.locator('li.tile button').first().click();
    await page.waitForSelector('[data-testid=no-commands]');
    await waitFor('chart summary', async () => /Lowest .* highest .* latest/.test(await page.textContent('[data-testid=chart-summary]')));
    // A link to a sensor that does not exist says so.
    await page.goto(stack.baseURL + '/#/sensor/no-such-sensor/temperature');
    await page.waitForSelector('[data-testid=unknown-sensor]');
  });

  it('asks again for commands typed offline, and shows when each was asked, sent and answered', { timeout: 120_000 }, async () => {
    const page = await newPage();
    await login(page, 'alice');
    await page.locator('li.tile button').first().click();
    await page.waitForSelector('button[data-action=reboot]');
    const sensor = decodeURIComponent(new URL(page.url()).hash.split('/')[2]);
    const stored = async () => (await stack.api('alice', 'GET', `/api/commands?sensor_id=${encodeURIComponent(sensor)}`)).body.commands;
    const before = (await stored()).length;

    await stack.stopServer();
    try {
      await page.waitForSelector('[data-testid=conn-status]:not([data-state=connected])');
      await page.waitForSelector('[data-testid=commands-offline]');
      await page.click('button[data-action=reboot]');
      await page.click('dialog.confirm button[type=submit]');
      await page.click('button[data-action=ping]');
      await waitFor('two held commands', async () => (await page.locator('[data-testid=command-outcome][data-status=held]').count()) === 2);
    } finally {
      await stack.startServer();
    }
    await waitConnected(page);
    // Back online: both wait for the operator and nothing reached the server.
    await page.waitForSelector('[data-testid=held-send]');
    assert.equal(await page.locator('[data-testid=command-outcome][data-status=held]').count(), 2);
    assert.equal((await stored()).length, before);
    await assertAccessible(page, 'held commands');

    // The reboot (older, listed last) is discarded; the ping is sent again.
    const held = page.locator('[data-testid=command-outcome][data-status=held]');
    await held.last().locator('[data-testid=held-discard]').click();
    await held.first().locator('[data-testid=held-send]').click();
    const done = page.locator('[data-testid=command-outcome][data-status=success]');
    await done.first().waitFor();
    assert.equal(await page.locator('[data-testid=command-outcome][data-status=discarded]').count(), 1);
    const times = await done.first().locator('[data-testid=command-times]').textContent();
    assert.match(times, /^asked \d\d:\d\d:\d\d · sent \d\d:\d\d:\d\d · answered \d\d:\d\d:\d\d$/);
    const cmds = await stored();
    assert.deepEqual(
      cmds.slice(0, cmds.length - before).map((c) => c.action),
      ['ping'],
      'only the ping asked for again reached the device',
    );
    // The history shows when each was sent and answered.
    await waitFor('history row with an answer time', async () => {
      const row = page.locator('table.history tbody tr').first();
      return (await row.locator('td').nth(1).textContent())?.trim() !== '';
    });
  });
});
