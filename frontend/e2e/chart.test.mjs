// Browser test of the sensor detail chart as an operator uses it, against
// the real server (harness.mjs): a sensor with a silence in its history
// shows a gap, a spike is cut and marked, drag zooms and live readings do
// not undo it, Reset zoom returns to live, a custom range is validated and
// shown, the arrows pan, an alert appears as a marker, a second metric is
// overlaid and removed, a long range refetches finer buckets when zoomed,
// and a link to an unknown sensor says so. axe-core checks the controls.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assertAccessible, login as loginAt, openPage, waitConnected } from './browser.mjs';
import { startStack, waitFor } from './harness.mjs';

const SENSOR = 'gap-1';
const VIEWER = { name: 'vera', password: 'vera-e2e-password' };

let stack;
let browser;
const contexts = [];
// The silence in the history, epoch ms (set in before).
let silence;

function newPage() {
  return openPage(browser, contexts);
}

function login(page, user, password) {
  return loginAt(page, stack.baseURL, user, password);
}

/** The chart element's data attributes. */
function chartData(page) {
  return page.locator('.chart').evaluate((el) => ({ ...el.dataset }));
}

/** Drags across the plot area from fraction a to fraction b of its width (shift held when pan). */
async function drag(page, a, b, { shift = false } = {}) {
  const box = await page.locator('.chart .u-over').boundingBox();
  assert.ok(box, 'plot area on screen');
  const y = box.y + box.height / 2;
  if (shift) await page.keyboard.down('Shift');
  await page.mouse.move(box.x + box.width * a, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * ((a + b) / 2), y, { steps: 5 });
  await page.mouse.move(box.x + box.width * b, y, { steps: 5 });
  await page.mouse.up();
  if (shift) await page.keyboard.up('Shift');
}

/** Local datetime-local text of epoch ms. */
function localInput(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

async function publishNow(value) {
  await stack.publish(`sensors/${SENSOR}/temperature`, JSON.stringify({ value, unit: '°C', ts: new Date().toISOString() }));
}

describe('sensor detail chart in the browser', { timeout: 600_000 }, () => {
  before(async () => {
    stack = await startStack({ sensors: 0 });
    browser = await stack.launchBrowser();
    await stack.addUser(VIEWER.name, 'viewer', VIEWER.password);
    // Twelve minutes of history every 2 s with a three-minute silence
    // (the gap) and one spike, for temperature and humidity.
    const now = Date.now();
    silence = [now - 7 * 60_000, now - 4 * 60_000];
    const temp = [];
    const hum = [];
    for (let t = now - 12 * 60_000; t < now - 10_000; t += 2000) {
      if (t > silence[0] && t < silence[1]) continue;
      const ts = new Date(t).toISOString();
      const spike = t >= now - 9 * 60_000 && t < now - 9 * 60_000 + 2000;
      temp.push(JSON.stringify({ value: spike ? 500 : +(21 + Math.sin(t / 30_000)).toFixed(2), unit: '°C', ts }));
      hum.push(JSON.stringify({ value: +(50 + 5 * Math.cos(t / 40_000)).toFixed(2), unit: '%', ts }));
    }
    await stack.publishLines(`sensors/${SENSOR}/temperature`, temp);
    await stack.publishLines(`sensors/${SENSOR}/humidity`, hum);
    for (const [metric, lines] of [
      ['temperature', temp],
      ['humidity', hum],
    ]) {
      await waitFor(`${metric} history stored`, async () => {
        const r = await stack.api('alice', 'GET', `/api/sensors/${SENSOR}/readings?metric=${metric}&limit=10000&from=${now - 13 * 60_000}`);
        return r.status === 200 && r.body.readings.length === lines.length;
      });
    }
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    if (stack) await stack.stop();
  });

  it('draws the gap, zooms, stays zoomed while readings arrive, pans and takes a custom range', { timeout: 180_000 }, async () => {
    const page = await newPage();
    await login(page, 'alice');
    await page.goto(`${stack.baseURL}/#/sensor/${SENSOR}/temperature`);
    await page.waitForSelector('.chart[data-points]:not([data-points="0"])');
    let d = await chartData(page);
    assert.equal(d.view, 'live');
    // The silence is drawn as a gap.
    const gaps = d.gaps.split(' ').filter(Boolean).map((g) => g.split('/').map((x) => Date.parse(x)));
    assert.ok(
      gaps.some(([a, b]) => a <= silence[0] + 2000 && b >= silence[1] - 2000),
      `a gap over the silence ${new Date(silence[0]).toISOString()}–${new Date(silence[1]).toISOString()}; gaps: ${d.gaps}`,
    );
    assert.match(await page.textContent('[data-testid=chart-summary]'), /gap/);
    // The spike is cut by the robust range, and said so.
    assert.ok(Number(d.clipped) >= 1, `clipped points: ${d.clipped}`);
    await page.waitForSelector('[data-testid=chart-clipped]');
    // The y axis has the unit.
    assert.equal(d.axes, '°C', 'the unit on the y axis');
    // Hovering shows the time to the second and the value with its unit.
    const box = await page.locator('.chart .u-over').boundingBox();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
    await waitFor('hover values', async () => {
      const vals = await page.locator('.chart .u-legend .u-value').allTextContents();
      return /\d{2}:\d{2}:\d{2}/.test(vals[0]) && / °C$/.test(vals[1]);
    });

    // Drag to zoom into the middle.
    const before = [Date.parse(d.xMin), Date.parse(d.xMax)];
    const span = before[1] - before[0];
    await drag(page, 0.3, 0.6);
    // The view turns fixed at once; the window follows once the chart has
    // applied it.
    await waitFor('zoomed', async () => {
      const x = await chartData(page);
      return x.view === 'fixed' && Date.parse(x.xMax) - Date.parse(x.xMin) < 0.9 * span;
    });
    d = await chartData(page);
    const zoomed = [Date.parse(d.xMin), Date.parse(d.xMax)];
    assert.ok(Math.abs(zoomed[1] - zoomed[0] - 0.3 * span) < 0.05 * span, `zoomed span ${zoomed[1] - zoomed[0]} of ${span}`);
    assert.ok(Math.abs(zoomed[0] - (before[0] + 0.3 * span)) < 0.05 * span, 'zoomed where dragged');
    await page.waitForSelector('[data-testid=reset-zoom]');

    // Live readings arrive (and are appended) but the zoomed window stays.
    const lastBefore = d.last;
    for (let i = 0; i < 3; i++) await publishNow(21.5 + i / 10);
    await waitFor('live readings appended', async () => (await chartData(page)).last !== lastBefore);
    d = await chartData(page);
    assert.deepEqual([Date.parse(d.xMin), Date.parse(d.xMax)], zoomed, 'the zoomed window did not move');
    assert.equal(d.view, 'fixed');

    // Reset zoom: live again, up to now.
    await page.click('[data-testid=reset-zoom]');
    await waitFor('live again, the window ending now', async () => {
      const x = await chartData(page);
      return x.view === 'live' && Math.abs(Date.parse(x.xMax) - Date.now()) < 30_000;
    });
    assert.equal(await page.locator('[data-testid=reset-zoom]').count(), 0);

    // A custom range: a wrong one is refused with a reason, a right one shown.
    await page.click('.custom-range summary');
    const now = Date.now();
    await page.fill('#range-from', localInput(now - 5 * 60_000));
    await page.fill('#range-to', localInput(now - 10 * 60_000));
    await page.click('.custom-range button[type=submit]');
    await page.waitForSelector('#range-error:has-text("The end must be after the start")');
    assert.equal(await page.getAttribute('#range-to', 'aria-invalid'), 'true');
    await assertAccessible(page, 'custom range with an error');
    const want = [Math.floor((now - 11 * 60_000) / 1000) * 1000, Math.floor((now - 3 * 60_000) / 1000) * 1000];
    await page.fill('#range-from', localInput(want[0]));
    await page.fill('#range-to', localInput(want[1]));
    await page.click('.custom-range button[type=submit]');
    await waitFor('custom range shown', async () => {
      const x = await chartData(page);
      return x.view === 'fixed' && Date.parse(x.xMin) === want[0] && Date.parse(x.xMax) === want[1];
    });
    assert.equal(await page.locator('#range-error').count(), 0);

    // Pan: back by half the window, then forward again.
    await page.click('button[aria-label^="Earlier"]');
    await waitFor('panned back', async () => Date.parse((await chartData(page)).xMin) === want[0] - (want[1] - want[0]) / 2);
    await page.click('button[aria-label^="Later"]');
    await waitFor('panned forward', async () => Date.parse((await chartData(page)).xMin) === want[0]);
    // Shift+drag pans too: dragging right shows earlier times.
    await drag(page, 0.6, 0.8, { shift: true });
    await waitFor('shift+drag panned', async () => Date.parse((await chartData(page)).xMin) < want[0] - 0.1 * (want[1] - want[0]));
    assert.equal((await chartData(page)).view, 'fixed');
    assert.deepEqual(page.__errors ?? [], []);
  });

  it('marks an alert on the time axis and overlays another metric', { timeout: 120_000 }, async () => {
    const rules = await stack.api('alice', 'PUT', `/api/sensors/${SENSOR}/rules`, {
      rules: [{ metric: 'temperature', kind: 'threshold', min: -10, max: 60 }],
    });
    assert.equal(rules.status, 200, JSON.stringify(rules.body));
    const page = await newPage();
    await login(page, 'alice');
    await page.goto(`${stack.baseURL}/#/sensor/${SENSOR}/temperature`);
    await page.waitForSelector('.chart[data-points]:not([data-points="0"])');
    await publishNow(999);
    const marker = page.locator('.chart .chart-marker.marker-alert');
    await marker.first().waitFor({ timeout: 20_000 });
    assert.match((await marker.first().getAttribute('title')) ?? '', /threshold alert #\d+ opened/);
    await waitFor('the alert in the text alternative', async () => /Markers: .*alert/.test(await page.textContent('[data-testid=chart-summary]')));
    // A command sent to the device is marked too (from the stored history).
    await page.click('button[data-action=ping]');
    await waitFor('ping stored', async () => (await stack.api('alice', 'GET', `/api/commands?sensor_id=${SENSOR}`)).body.commands?.length > 0);
    await page.reload();
    await waitConnected(page);
    const commandMarker = page.locator('.chart .chart-marker[data-kind~=command]').first();
    await commandMarker.waitFor({ timeout: 20_000 }).catch(async (err) => {
      const chart = await chartData(page).catch((e) => `no chart: ${e.message}`);
      const summary = await page.textContent('[data-testid=chart-summary]', { timeout: 1000 }).catch(() => 'absent');
      const stored = (await stack.api('alice', 'GET', `/api/commands?sensor_id=${SENSOR}`)).body;
      err.message += `\nat ${new Date().toISOString()} on ${page.url()}\nchart: ${JSON.stringify(chart)}\nsummary: ${summary}\nstored: ${JSON.stringify(stored)}\npage log:\n${(page.__console ?? []).join('\n')}`;
      throw err;
    });
    assert.match(await page.textContent('[data-testid=chart-summary]'), /Command ping by alice/);

    // Overlay humidity: its own axis with its unit, in the legend, removable.
    await page.selectOption('#overlay-metric', 'humidity');
    await page.click('.overlay-add button:text-is("Add")');
    await waitFor('humidity overlaid', async () => (await chartData(page)).metrics === 'temperature humidity');
    await page.waitForSelector('.chart[data-points]:not([data-points="0"])');
    await page.waitForSelector('.chart-legend li[data-overlay=humidity]');
    await waitFor('an axis for humidity', async () => (await chartData(page)).axes === 'temperature (°C)|humidity (%)');
    await page.locator('.detail').screenshot({ path: process.env.CHART_SHOT ?? '/dev/null' }).catch(() => {});
    assert.ok(await page.locator('.chart .u-legend :text("humidity (%)")').count(), 'uPlot legend lists humidity');
    await assertAccessible(page, 'chart with an overlay');
    await page.click('button[aria-label="Remove humidity from the chart"]');
    await waitFor('overlay removed', async () => (await chartData(page)).metrics === 'temperature');
    assert.deepEqual(page.__errors ?? [], []);
  });

  it('refetches finer buckets when zoomed into a long range', { timeout: 90_000 }, async () => {
    const page = await newPage();
    await login(page, 'alice');
    await page.goto(`${stack.baseURL}/#/sensor/${SENSOR}/temperature`);
    await page.waitForSelector('.chart[data-points]');
    await page.click('.range-picker button:text-is("24 h")');
    await waitFor('24 h in 1-minute buckets', async () => (await chartData(page)).bucket === '1m');
    // The last ~30 % of 24 h is about 7 hours: 30-second buckets.
    await drag(page, 0.7, 0.999);
    await waitFor('finer buckets', async () => {
      const d = await chartData(page);
      return d.view === 'fixed' && d.bucket === '30s' && Number(d.points) > 0;
    });
    await page.click('[data-testid=reset-zoom]');
    await waitFor('back to 1-minute buckets', async () => (await chartData(page)).bucket === '1m');
    assert.deepEqual(page.__errors ?? [], []);
  });

  it('says when a sensor is unknown, and why a viewer has no commands', { timeout: 60_000 }, async () => {
    const page = await newPage();
    await login(page, VIEWER.name, VIEWER.password);
    await page.goto(`${stack.baseURL}/#/sensor/no-such-sensor/temperature`);
    const notice = page.locator('[data-testid=unknown-sensor]');
    await notice.waitFor();
    assert.match(await notice.textContent(), /Unknown sensor "no-such-sensor"/);
    assert.equal(await page.locator('.chart').count(), 0, 'no empty chart');
    // A known sensor with a metric it does not have names its metrics.
    await page.goto(`${stack.baseURL}/#/sensor/${SENSOR}/pressure`);
    await page.waitForSelector('[data-testid=unknown-sensor]:has-text("has no metric \\"pressure\\"")');
    await page.goto(`${stack.baseURL}/#/sensor/${SENSOR}/temperature`);
    await page.waitForSelector('.chart[data-points]');
    assert.match(await page.textContent('[data-testid=no-commands]'), /need the operator role; you are signed in as a viewer/);
    await assertAccessible(page, 'detail page of a viewer');
    assert.deepEqual(page.__errors ?? [], []);
  });
});
