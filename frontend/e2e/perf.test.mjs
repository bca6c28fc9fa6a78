// Load check: 500 simulated sensors at 1 Hz into one dashboard. Reports the
// long tasks (main-thread tasks over 50 ms) and the frame rate seen by the
// page while it keeps up with the stream. On a shared 2-core machine the
// numbers depend on what else runs, so they are reported, not asserted,
// unless WATCHROOM_E2E_STRICT_PERF=1.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PASSWORDS, SCREENSHOT_DIR, ensureScreenshotDir, startStack, waitFor } from './harness.mjs';

const SENSORS = 500;
const SAMPLE_MS = 15_000;

let stack;
let browser;

describe('dashboard under load', { timeout: 300_000 }, () => {
  before(async () => {
    await ensureScreenshotDir();
    stack = await startStack({ sensors: SENSORS, rate: 1 });
    browser = await stack.launchBrowser();
  });

  after(async () => {
    if (stack) await stack.stop();
  });

  it(`stays smooth with ${SENSORS} sensors at 1 Hz`, { timeout: 180_000 }, async (t) => {
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 } });
    const page = await ctx.newPage();
    await page.addInitScript(() => {
      window.__longTasks = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration });
      }).observe({ type: 'longtask', buffered: true });
    });
    await page.goto(stack.baseURL + '/');
    await page.fill('#login-user', 'alice');
    await page.fill('#login-password', PASSWORDS.alice);
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-testid=conn-status][data-state=connected]', { timeout: 20_000 });
    await waitFor(`${SENSORS} sensors on the page`, async () => (await page.locator('li.tile').count()) >= SENSORS, {
      timeoutMs: 60_000,
      intervalMs: 500,
    });
    await sleep(3000); // past the initial load and backfill

    const result = await page.evaluate(async (ms) => {
      const startLongTasks = window.__longTasks.length;
      const t0 = performance.now();
      let frames = 0;
      let worstGap = 0;
      let last = t0;
      await new Promise((resolve) => {
        const tick = (now) => {
          frames++;
          worstGap = Math.max(worstGap, now - last);
          last = now;
          if (now - t0 < ms) requestAnimationFrame(tick);
          else resolve();
        };
        requestAnimationFrame(tick);
      });
      const elapsed = performance.now() - t0;
      const tasks = window.__longTasks.slice(startLongTasks);
      return {
        fps: (frames * 1000) / elapsed,
        worstFrameGapMs: worstGap,
        longTasks: tasks.length,
        longestTaskMs: tasks.reduce((m, x) => Math.max(m, x.duration), 0),
      };
    }, SAMPLE_MS);

    // The page kept up: the freshest tiles are seconds old, not minutes.
    // (Off-screen tiles do not render until scrolled into view.)
    const ages = await page.locator('li.tile .tile-age').evaluateAll((els) =>
      els
        .filter((e) => {
          const r = e.getBoundingClientRect();
          return r.bottom > 0 && r.top < window.innerHeight;
        })
        .map((e) => e.textContent),
    );
    const fresh = ages.filter((a) => /^\d s ago$/.test(a ?? '')).length;
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'dashboard-500.png') });

    // Scrolled into view, the last tiles catch up at once.
    await page.locator('li.tile').last().scrollIntoViewIfNeeded();
    await sleep(500);
    const lastAge = await page.locator('li.tile .tile-age').last().textContent();
    assert.match(lastAge ?? '', /^\d s ago$/, 'the last tile caught up after scrolling');

    const report = `${SENSORS} sensors at 1 Hz over ${SAMPLE_MS / 1000} s: ${result.fps.toFixed(1)} fps, worst frame gap ${result.worstFrameGapMs.toFixed(0)} ms, ${result.longTasks} long tasks (longest ${result.longestTaskMs.toFixed(0)} ms); ${fresh}/${ages.length} visible tiles under 10 s old`;
    t.diagnostic(report);
    console.log(report);
    assert.ok(ages.length > 0 && fresh >= ages.length * 0.8, `tiles fell behind: ${ages.join(', ')}`);
    if (process.env.WATCHROOM_E2E_STRICT_PERF === '1') {
      assert.equal(result.longTasks, 0, report);
    }
    await ctx.close();
  });
});
