// The README's screenshots, from a run like `make run`'s demo: 12 simulated
// sensors at 1 reading/s with the demo's anomaly rate (0.01), so spikes,
// an open alert and a threshold on the chart look as operators see them.
// Each screen is also checked for what it must show before it is taken.
// `make screenshots` writes them to docs/screenshots; otherwise they go to
// a temporary directory (harness.mjs SCREENSHOT_DIR).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DESKTOP, PHONE, login as loginAt, openPage } from './browser.mjs';
import { SCREENSHOT_DIR, ensureScreenshotDir, startStack, waitFor } from './harness.mjs';

/** The demo's sensors, anomaly rate and rate (cmd/watchroom/demo.go). */
const DEMO = { sensors: 12, rate: 1, anomalies: 0.01 };

let stack;
let browser;
const contexts = [];

function newPage(viewport = DESKTOP, colorScheme = 'light') {
  return openPage(browser, contexts, { viewport, colorScheme });
}

function login(page, user) {
  return loginAt(page, stack.baseURL, user);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, name) });
}

describe('README screenshots from a demo-like run', { timeout: 600_000 }, () => {
  before(async () => {
    await ensureScreenshotDir();
    stack = await startStack(DEMO);
    browser = await stack.launchBrowser();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await stack?.stop();
  });

  it('renders the main screens with anomalies, an open alert and a threshold', { timeout: 300_000 }, async () => {
    // Two hours of history for the simulated sensor the detail shot shows
    // (s-1 answers commands), ending near its live values, so the chart has
    // a shape, and an operator's threshold that its live values run over:
    // the alert it opens.
    const sensor = 's-1';
    const token = await stack.token('alice');
    const call = async (method, p, body) => {
      const res = await fetch(stack.baseURL + p, {
        method,
        headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(10_000),
      });
      return { status: res.status, body: await res.json() };
    };
    let live;
    await waitFor("the simulator's s-1 temperature", async () => {
      const res = await call('GET', '/api/sensors');
      live = res.body.find((x) => x.sensor_id === sensor && x.metric === 'temperature');
      return live !== undefined;
    });
    const base = live.last_value;
    const now = Date.now();
    const lines = [];
    for (let t = now - 2 * 3600_000; t < now - 90_000; t += 10_000) {
      const daily = 1.5 * Math.sin(((t - now) / 3600_000) * Math.PI);
      const noise = Math.sin(t / 7_000) * 0.2 + Math.sin(t / 131_000) * 0.4;
      lines.push(JSON.stringify({ value: +(base + daily + noise).toFixed(2), unit: '°C', ts: new Date(t).toISOString() }));
    }
    const rule = await call('PUT', `/api/sensors/${sensor}/rules`, {
      rules: [{ metric: 'temperature', kind: 'threshold', min: +(base - 8).toFixed(1), max: +(base - 2).toFixed(1) }],
    });
    assert.equal(rule.status, 200, JSON.stringify(rule.body));
    await stack.publishLines(`sensors/${sensor}/temperature`, lines);

    const page = await newPage(DESKTOP);
    await login(page, 'alice');
    await waitFor('12 tiles', async () => (await page.locator('li.tile').count()) >= 12, { timeoutMs: 30_000 });
    await page.locator('.alerts [data-alert-id]').first().waitFor({ timeout: 30_000 });
    // The filter's checkbox is a checkbox, not a 280 px box.
    const box = await page.locator('#sensor-filter-whole').boundingBox();
    assert.ok(box.width <= 24 && box.height <= 24, `the Whole ids checkbox is ${box.width}×${box.height} px`);
    // A minute of the simulator's anomalies, so some sparklines carry spikes.
    await sleep(60_000);
    await shot(page, 'dashboard.png');

    await page.locator(`li.tile[data-sensor="${sensor}"][data-metric="temperature"] button`).click();
    await page.click('.range-picker button:text-is("1 h")');
    await waitFor('an hour of history', async () => {
      const text = (await page.locator('.range-picker .muted').textContent()) ?? '';
      return Number(text.split(' ')[0]) >= 300;
    });
    await page.click('button[data-action=ping]');
    await page.waitForSelector('[data-testid=command-outcome][data-status=success]', { timeout: 15_000 });
    // The ping scrolled the commands into view: back to the chart, with its
    // threshold lines drawn.
    await page.evaluate(() => document.querySelector('main')?.scrollTo?.(0, 0));
    await page.locator('button:has-text("All sensors")').scrollIntoViewIfNeeded();
    await page.waitForSelector('[data-testid=threshold-max]:not([hidden])');
    await sleep(500);
    await shot(page, 'sensor-detail.png');

    const dark = await newPage(DESKTOP, 'dark');
    await login(dark, 'bob');
    await waitFor('12 tiles', async () => (await dark.locator('li.tile').count()) >= 12);
    await sleep(3000);
    await shot(dark, 'dashboard-dark.png');

    const phone = await newPage(PHONE);
    await login(phone, 'bob');
    await waitFor('tiles', async () => (await phone.locator('li.tile').count()) >= 5);
    await sleep(2000);
    await shot(phone, 'phone-sensors.png');
    await phone.click('nav.tabs button:has-text("Chat")');
    await sleep(500);
    await shot(phone, 'phone-chat.png');
    await phone.click('nav.tabs button:has-text("Alerts")');
    await phone.locator('.alerts [data-alert-id]').first().waitFor();
    await sleep(500);
    await shot(phone, 'phone-alerts.png');
    // No horizontal scrolling at phone width.
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the phone screen`);
    for (const p of [page, dark, phone]) assert.deepEqual(p.__errors ?? [], []);
  });
});
