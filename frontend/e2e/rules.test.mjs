// Browser tests of rules and silences (docs/alerts.md#rules, #silences)
// against the real server, as an operator uses them: edit a threshold and
// see it drawn on the chart, see a bad one refused with nothing changed,
// follow another operator's change; a viewer sees the rules read-only;
// silence a sensor, see it on the tile, the detail page and the alerts
// panel (its alert kept but not counted or announced), and end it.
// axe-core finds no violation on the new UI.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { assertAccessible, login as loginAt } from './browser.mjs';
import { PASSWORDS, SCREENSHOT_DIR, ensureScreenshotDir, startStack, waitFor } from './harness.mjs';

const DESKTOP = { width: 1366, height: 900 };
const SENSOR = 'boiler-1';
const DETAIL = `/#/sensor/${SENSOR}/temperature`;
const VIEWER = { name: 'victor', password: 'victor-e2e-password' };

let stack;
let browser;
const contexts = [];

async function newPage() {
  const ctx = await browser.newContext({ viewport: DESKTOP });
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (err) => (page.__errors = [...(page.__errors ?? []), err.message]));
  return page;
}

function login(page, user, password = PASSWORDS[user]) {
  return loginAt(page, stack.baseURL, user, password);
}

async function openDetail(page) {
  await page.goto(stack.baseURL + DETAIL);
  await page.waitForSelector('.chart[data-points]');
  await page.waitForSelector('[data-testid=rules-limits]');
}

async function storedThreshold() {
  const res = await stack.api('alice', 'GET', `/api/sensors/${SENSOR}/rules`);
  assert.equal(res.status, 200);
  return res.body.rules.find((r) => r.metric === 'temperature' && r.kind === 'threshold');
}

async function shot(page, name) {
  await ensureScreenshotDir();
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, name), fullPage: true });
}

const label = (page, side) => page.locator(`[data-testid=threshold-${side}]`);

describe('rules and silences in the browser', { timeout: 600_000 }, () => {
  before(async () => {
    stack = await startStack({ sensors: 0 });
    browser = await stack.launchBrowser();
    await stack.addUser(VIEWER.name, 'viewer', VIEWER.password);
    // A few readings, so that the chart has something to draw.
    await stack.publishLines(`sensors/${SENSOR}/temperature`, ['40', '45', '50', '55', '60', '52', '48']);
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    if (stack) await stack.stop();
  });

  it('lets an operator set a threshold, draws it, refuses a bad one and follows another operator', { timeout: 120_000 }, async () => {
    const page = await newPage();
    await login(page, 'alice');
    await openDetail(page);
    assert.equal(await label(page, 'max').isVisible(), false, 'no threshold is drawn before one is set');

    await page.check('#rule-th-on');
    await page.fill('#rule-th-min', '30');
    await page.fill('#rule-th-max', '70');
    await page.click('.rules button[type=submit]');
    await waitFor('the saved limits drawn', async () => (await label(page, 'max').getAttribute('data-value')) === '70');
    assert.equal(await label(page, 'min').getAttribute('data-value'), '30');
    assert.ok(await label(page, 'max').isVisible());
    assert.equal(await label(page, 'max').textContent(), 'max 70');
    // Near the data (40 to 60): the chart's range takes the lines in.
    assert.equal(await label(page, 'max').getAttribute('data-where'), 'inside');
    assert.equal(await label(page, 'min').getAttribute('data-where'), 'inside');
    assert.equal(await page.textContent('[data-testid=rules-status]'), 'Saved.');
    assert.match(await page.textContent('[data-testid=rules-limits]'), /Drawn on the chart: min 30, max 70\. Last changed by alice/);
    const th = await storedThreshold();
    assert.deepEqual([th.enabled, th.min, th.max], [true, 30, 70]);
    await assertAccessible(page, 'sensor detail with the rules editor');
    await shot(page, 'sensor-rules.png');

    // min above max: the server refuses, says why next to the form, stores nothing.
    await page.fill('#rule-th-min', '75');
    await page.click('.rules button[type=submit]');
    const err = page.getByTestId('rules-error');
    await err.waitFor();
    assert.match(await err.textContent(), /min \(75\) must be less than max \(70\)/);
    assert.equal(await page.getAttribute('#rule-th-min', 'aria-invalid'), 'true');
    assert.equal((await storedThreshold()).min, 30);
    assert.equal(await label(page, 'min').getAttribute('data-value'), '30');
    await assertAccessible(page, 'the rules editor with an error');

    // Another operator (admin) changes the rules: the open page redraws at once.
    const put = await stack.api('admin', 'PUT', `/api/sensors/${SENSOR}/rules`, {
      rules: [{ metric: 'temperature', kind: 'threshold', min: 30, max: 65 }],
    });
    assert.equal(put.status, 200);
    await waitFor('the other operator’s limit drawn', async () => (await label(page, 'max').getAttribute('data-value')) === '65');
    assert.match(await page.textContent('[data-testid=rules-status]'), /admin changed these rules meanwhile/);
    assert.deepEqual(page.__errors ?? [], []);
  });

  it('shows a viewer the rules read-only and says why', { timeout: 60_000 }, async () => {
    const page = await newPage();
    await login(page, VIEWER.name, VIEWER.password);
    await openDetail(page);
    assert.match(await page.textContent('[data-testid=rules-readonly]'), /needs the operator role; you are viewer/);
    await waitFor('the stored max in the form', async () => (await page.inputValue('#rule-th-max')) === '65');
    for (const id of ['#rule-th-on', '#rule-th-min', '#rule-th-max', '#rule-sp-k', '#rule-st-after']) {
      assert.equal(await page.isDisabled(id), true, `${id} is disabled for a viewer`);
    }
    assert.equal(await page.locator('.rules button[type=submit]').count(), 0);
    assert.equal(await label(page, 'max').getAttribute('data-value'), '65');
    assert.match(await page.textContent('[data-testid=silence-readonly]'), /needs the operator role/);
    const res = await fetch(stack.baseURL + `/api/sensors/${SENSOR}/rules`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${await page.evaluate(() => sessionStorage.getItem('watchroom.token'))}` },
      body: JSON.stringify({ rules: [] }),
    });
    assert.equal(res.status, 403);
    await assertAccessible(page, 'sensor detail, read-only');
  });

  it('silences a sensor: shown on the tile, the page and the alerts panel, not counted or announced; ended early', { timeout: 120_000 }, async () => {
    const page = await newPage();
    await login(page, 'alice');
    await openDetail(page);
    await page.selectOption('#silence-for', '3600');
    await page.fill('#silence-reason', 'pump swap');
    await page.click('.silence-form button[type=submit]');
    const item = page.getByTestId('silence');
    await item.waitFor();
    assert.match(await item.textContent(), /whole sensor\s+silenced until \d\d:\d\d:\d\d by alice — pump swap/);
    const listed = await stack.api('alice', 'GET', '/api/silences?active=true');
    assert.equal(listed.body.silences.length, 1);
    const silenceID = listed.body.silences[0].id;

    // Out of range while silenced: the alert opens, marked, not counted, not announced.
    await stack.publish(`sensors/${SENSOR}/temperature`, '97');
    const alertItem = page.locator(`.alert-item:has(.alert-sensor:has-text("${SENSOR}"))`).first();
    await alertItem.waitFor({ timeout: 20_000 });
    assert.match(await alertItem.getByTestId('alert-silenced').textContent(), /^silenced until \d\d:\d\d:\d\d by alice$/);
    const open = await stack.api('alice', 'GET', `/api/alerts?state=open&sensor_id=${SENSOR}`);
    assert.equal(open.body.alerts[0].silence_id, silenceID);
    assert.match(await page.getByTestId('alert-badge').textContent(), /\b0$/);
    assert.match(await page.textContent('#alerts-title'), /\+1 silenced/);
    assert.doesNotMatch(await page.textContent('[data-testid=live-polite]'), new RegExp(SENSOR));
    assert.doesNotMatch(await page.textContent('[data-testid=live-urgent]'), new RegExp(SENSOR));
    await assertAccessible(page, 'a silenced sensor and its alert');
    await shot(page, 'sensor-silenced.png');

    // The tile says so too.
    await page.click('.detail .back');
    const tile = page.locator(`li.tile[data-sensor="${SENSOR}"]`);
    await tile.getByTestId('tile-silenced').waitFor();
    await assertAccessible(page, 'the grid with a silenced tile');

    // End it early: the sensor is no longer silenced, its alert counts again.
    await tile.locator('button').click();
    await page.waitForSelector('[data-testid=silence]');
    await page.click('[data-testid=silence] button:has-text("End now")');
    await page.getByTestId('not-silenced').waitFor();
    await waitFor('the alert counted again', async () => /\b1$/.test(await page.getByTestId('alert-badge').textContent()));
    assert.equal(await alertItem.getByTestId('alert-silenced').count(), 0);
    assert.match(await alertItem.textContent(), /opened while silenced/);
    const ended = await stack.api('alice', 'GET', '/api/silences');
    assert.equal(ended.body.silences[0].ended_by, 'alice');

    // The history lists it, ended early.
    await page.click('.silence-history summary');
    const hist = page.locator(`[data-testid=silence-history] li[data-silence-id="${silenceID}"]`);
    assert.match(await hist.textContent(), /whole sensor\s*ended early.*by alice.*ended by alice.*Reason: pump swap/);
    await assertAccessible(page, 'the silence history');
    assert.deepEqual(page.__errors ?? [], []);
  });
});
