// End-to-end harness: builds the watchroom binary and starts everything the
// dashboard needs, for real, on free ports: a fresh PostgreSQL database, a
// private Mosquitto, `watchroom serve`, users, the simulator, and a headless
// Chromium driven by playwright-core. It stops only what it started, by
// PID, and drops the database at the end. Every wait is bounded.

import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const FRONTEND_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(FRONTEND_DIR, '..');
// Screenshots go to a temporary folder, so a test run never changes the
// repository; `make screenshots` points this at docs/screenshots.
export const SCREENSHOT_DIR = process.env.WATCHROOM_SCREENSHOT_DIR || path.join(os.tmpdir(), 'watchroom-screenshots');
export const CHROMIUM = process.env.WATCHROOM_E2E_CHROMIUM || '/usr/bin/chromium';
const MOSQUITTO = process.env.WATCHROOM_E2E_MOSQUITTO || '/usr/sbin/mosquitto';
const PG_HOST = process.env.WATCHROOM_E2E_PGHOST || '127.0.0.1';
const PG_USER = process.env.WATCHROOM_E2E_PGUSER || 'postgres';

export const PASSWORDS = {
  admin: 'admin-e2e-password',
  alice: 'alice-e2e-password',
  bob: 'bob-e2e-password',
};

/** A port nobody listens on right now (the OS picks it). */
export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/** Runs a command to completion with a deadline; rejects with its output on failure. */
export function run(cmd, args, { cwd, env, input, timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { cwd, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
        } else {
          resolve(stdout);
        }
      },
    );
    if (input !== undefined) child.stdin.end(input);
  });
}

/** Polls fn until it returns a truthy value or the deadline passes. */
export async function waitFor(what, fn, { timeoutMs = 20_000, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${lastErr.message}` : ''}`);
}

async function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A child process with its output kept (the tail is shown when something fails). */
class Proc {
  constructor(name, cmd, args, opts) {
    this.name = name;
    this.output = '';
    this.child = spawn(cmd, args, { ...opts, stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = once(this.child, 'exit').then(([code, signal]) => ({ code, signal }));
    const keep = (b) => {
      this.output += b.toString();
      if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
    };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    this.child.on('error', (err) => keep(`spawn error: ${err.message}\n`));
  }

  get pid() {
    return this.child.pid;
  }

  get running() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  tail(n = 40) {
    return this.output.split('\n').slice(-n).join('\n');
  }

  /** SIGTERM, then SIGKILL if it has not exited within graceMs. Only this PID. */
  async stop(graceMs = 10_000) {
    if (!this.running) return this.exited;
    try {
      process.kill(this.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const res = await Promise.race([this.exited, sleep(graceMs).then(() => null)]);
    if (res) return res;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    return Promise.race([this.exited, sleep(5_000).then(() => ({ code: null, signal: 'SIGKILL' }))]);
  }
}

/**
 * Starts the whole stack. Call stack.stop() in an after hook; it is safe to
 * call after a partial start.
 */
/**
 * Starts a server, database, broker and (unless sensors is 0) the
 * simulator with sensors at rate readings/s each and the given anomaly
 * rate (0: clean values; the demo uses 0.01).
 */
export async function startStack({ sensors = 5, rate = 1, anomalies = 0 } = {}) {
  const stack = new Stack();
  try {
    await stack.start({ sensors, rate, anomalies });
  } catch (err) {
    const logs = stack.logs();
    await stack.stop();
    throw new Error(`${err.message}\n--- logs ---\n${logs}`);
  }
  return stack;
}

class Stack {
  constructor() {
    this.procs = [];
    this.dbName = `watchroom_e2e_${process.pid}_${Math.floor(Math.random() * 1e9).toString(36)}`;
    this.dbCreated = false;
    this.browser = null;
  }

  async start({ sensors, rate, anomalies }) {
    this.tmp = await mkdtemp(path.join(os.tmpdir(), 'watchroom-e2e-'));
    this.bin = path.join(this.tmp, 'watchroom');
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} not found: install Debian's chromium package (apt-get install chromium)`);
    }

    // Build the server binary from this checkout (with the committed dist/).
    await run('go', ['build', '-o', this.bin, './cmd/watchroom'], { cwd: REPO_ROOT, timeoutMs: 300_000 });

    // Fresh database.
    await run('psql', ['-h', PG_HOST, '-U', PG_USER, '-v', 'ON_ERROR_STOP=1', '-c', `CREATE DATABASE ${this.dbName}`], {
      timeoutMs: 30_000,
    }).catch((err) => {
      throw new Error(`cannot create a database (is PostgreSQL running on ${PG_HOST}:5432 with role ${PG_USER}?): ${err.message}`);
    });
    this.dbCreated = true;
    this.dbURL = `postgres://${PG_USER}@${PG_HOST}:5432/${this.dbName}?sslmode=disable`;

    // Private Mosquitto. A config with an explicit IPv4 listener: with -p
    // alone it quietly listens on IPv6 only when the IPv4 port is taken.
    this.mqttPort = await freePort();
    const conf = path.join(this.tmp, 'mosquitto.conf');
    await writeFile(
      conf,
      [
        `listener ${this.mqttPort} 127.0.0.1`,
        'allow_anonymous true',
        'persistence false',
        'max_inflight_messages 1000',
        'max_queued_messages 100000',
        '',
      ].join('\n'),
    );
    const mq = new Proc('mosquitto', MOSQUITTO, ['-c', conf], {});
    this.procs.push(mq);
    await waitFor('mosquitto to listen', async () => (mq.running ? portOpen(this.mqttPort) : Promise.reject(new Error('mosquitto exited'))), {
      timeoutMs: 10_000,
    });
    this.mqttURL = `tcp://127.0.0.1:${this.mqttPort}`;

    this.httpPort = await freePort();
    this.baseURL = `http://127.0.0.1:${this.httpPort}`;
    this.env = {
      WATCHROOM_DATABASE_URL: this.dbURL,
      WATCHROOM_MQTT_URL: this.mqttURL,
      WATCHROOM_HTTP_ADDR: `127.0.0.1:${this.httpPort}`,
      // No metrics listener: its default port is one per machine, and the
      // browser tests run servers side by side.
      WATCHROOM_METRICS_ADDR: '',
      WATCHROOM_ADMIN_PASSWORD: PASSWORDS.admin,
      WATCHROOM_MQTT_CLIENT_ID: `watchroom-e2e-${process.pid}`,
      WATCHROOM_LOG_LEVEL: 'info',
    };
    await this.startServer();

    // Users (the database is migrated by serve's start).
    for (const [name, role] of [
      ['alice', 'operator'],
      ['bob', 'analyst'],
    ]) {
      await this.addUser(name, role, PASSWORDS[name]);
    }

    // sensors: 0 runs no simulator (the test publishes what it needs).
    if (sensors === 0) return;
    this.sim = new Proc('simulate', this.bin, [
      'simulate',
      '--mqtt-url',
      this.mqttURL,
      '--sensors',
      String(sensors),
      '--rate',
      String(rate),
      '--anomalies',
      String(anomalies),
    ], {
      env: { ...process.env, WATCHROOM_MQTT_URL: this.mqttURL },
    });
    this.procs.push(this.sim);
  }

  /** Adds a user with `watchroom user add`, as an administrator would. */
  async addUser(name, role, password) {
    await run(this.bin, ['user', 'add', '--name', name, '--role', role, '--password-stdin'], {
      env: { WATCHROOM_DATABASE_URL: this.dbURL },
      input: password + '\n',
      timeoutMs: 30_000,
    });
  }

  /** Starts `watchroom serve` on the stack's port and database; extraEnv adds or overrides settings for this run. */
  async startServer(extraEnv = {}) {
    const srv = new Proc('serve', this.bin, ['serve'], { env: { ...process.env, ...this.env, ...extraEnv } });
    this.server = srv;
    this.procs.push(srv);
    await waitFor(
      'watchroom serve to be ready (/readyz)',
      async () => {
        if (!srv.running) throw new Error(`serve exited:\n${srv.tail()}`);
        const res = await fetch(this.baseURL + '/readyz', { signal: AbortSignal.timeout(2000) });
        return res.ok;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
  }

  /** Stops the server (SIGTERM, graceful) and returns once it has exited. */
  async stopServer() {
    await this.server.stop(15_000);
  }

  /** Kills the server with SIGKILL (no shutdown at all: a crash) and returns once it is gone. Only its PID. */
  async killServer() {
    if (!this.server.running) return;
    process.kill(this.server.pid, 'SIGKILL');
    await Promise.race([this.server.exited, sleep(10_000).then(() => Promise.reject(new Error('serve did not die on SIGKILL')))]);
  }

  async restartServer() {
    await this.stopServer();
    await this.startServer();
  }

  /** Publishes one MQTT message at QoS 1 with mosquitto_pub. */
  async publish(topic, payload) {
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(this.mqttPort), '-q', '1', '-t', topic, '-m', payload], {
      timeoutMs: 10_000,
    });
  }

  /** Publishes one message per line of payloads at QoS 1 in one mosquitto_pub run. */
  async publishLines(topic, payloads) {
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(this.mqttPort), '-q', '1', '-t', topic, '-l'], {
      input: payloads.join('\n') + '\n',
      timeoutMs: 60_000,
    });
  }

  /** Logs in over REST; returns the token. */
  async token(user) {
    const res = await fetch(this.baseURL + '/api/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: user, password: PASSWORDS[user] }),
    });
    if (!res.ok) throw new Error(`login ${user}: ${res.status} ${await res.text()}`);
    return (await res.json()).token;
  }

  async api(user, method, p, body) {
    const token = await this.token(user);
    const res = await fetch(this.baseURL + p, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, body: json };
  }

  async launchBrowser() {
    const { chromium } = await import('playwright-core');
    this.browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      timeout: 60_000,
    });
    return this.browser;
  }

  logs() {
    return this.procs.map((p) => `[${p.name} pid ${p.pid}]\n${p.tail(30)}`).join('\n');
  }

  async stop() {
    if (this.browser) {
      await Promise.race([this.browser.close().catch(() => {}), sleep(10_000)]);
      this.browser = null;
    }
    // Reverse order: simulator, server(s), broker.
    for (const p of [...this.procs].reverse()) await p.stop(10_000);
    this.procs = [];
    if (this.dbCreated) {
      await run('psql', ['-h', PG_HOST, '-U', PG_USER, '-c', `DROP DATABASE IF EXISTS ${this.dbName} WITH (FORCE)`], {
        timeoutMs: 30_000,
      }).catch((err) => console.error(err.message));
      this.dbCreated = false;
    }
    if (this.tmp) await rm(this.tmp, { recursive: true, force: true });
  }
}

export async function ensureScreenshotDir() {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
}
