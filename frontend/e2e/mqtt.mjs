// A minimal MQTT 3.1.1 publisher for the browser tests: one TCP connection,
// QoS 1, many topics, in the order given. mosquitto_pub takes one topic per
// process, and several processes would interleave their messages in no
// fixed order; the resume test needs one ordered stream at a few hundred
// messages per second, and to know when the broker has taken every one of
// them (PUBACK).

import net from 'node:net';
import { once } from 'node:events';

function encodeLength(n) {
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

function str(s) {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

function packet(type, flags, body) {
  return Buffer.concat([Buffer.from([(type << 4) | flags]), encodeLength(body.length), body]);
}

export class Publisher {
  /** Connects to the broker at host:port with a clean session. */
  static async connect(port, host = '127.0.0.1', clientId = `e2e-pub-${process.pid}-${Date.now()}`) {
    const p = new Publisher();
    p.sock = net.connect({ port, host });
    p.sock.setNoDelay(true);
    await once(p.sock, 'connect');
    const connack = new Promise((resolve, reject) => {
      p.onConnack = resolve;
      p.sock.once('error', reject);
    });
    p.sock.on('data', (b) => p.onData(b));
    p.sock.on('error', (err) => {
      p.error = err;
    });
    // CONNECT: protocol "MQTT" level 4, clean session, keepalive 60 s.
    const vh = Buffer.concat([str('MQTT'), Buffer.from([4, 0x02, 0, 60])]);
    p.sock.write(packet(1, 0, Buffer.concat([vh, str(clientId)])));
    const rc = await connack;
    if (rc !== 0) throw new Error(`MQTT CONNACK return code ${rc}`);
    return p;
  }

  constructor() {
    this.buf = Buffer.alloc(0);
    this.nextId = 1;
    this.unacked = new Set();
    this.waiters = [];
    this.sent = 0;
  }

  onData(b) {
    this.buf = Buffer.concat([this.buf, b]);
    while (this.buf.length >= 2) {
      let len = 0;
      let mult = 1;
      let i = 1;
      let byte;
      do {
        if (i >= this.buf.length) return;
        byte = this.buf[i++];
        len += (byte & 0x7f) * mult;
        mult *= 128;
      } while (byte & 0x80);
      if (this.buf.length < i + len) return;
      const type = this.buf[0] >> 4;
      const body = this.buf.subarray(i, i + len);
      this.buf = this.buf.subarray(i + len);
      if (type === 2) this.onConnack?.(body[1]);
      else if (type === 4) {
        this.unacked.delete(body.readUInt16BE(0));
        if (this.unacked.size === 0) for (const w of this.waiters.splice(0)) w();
      }
    }
  }

  /** Publishes at QoS 1; resolves once written (not acked: see drain). */
  publish(topic, payload) {
    if (this.error) throw this.error;
    const id = this.nextId;
    this.nextId = (this.nextId % 65535) + 1;
    if (this.unacked.has(id)) throw new Error('more than 65535 messages in flight');
    this.unacked.add(id);
    const pid = Buffer.alloc(2);
    pid.writeUInt16BE(id);
    this.sock.write(packet(3, 0x02, Buffer.concat([str(topic), pid, Buffer.from(payload, 'utf8')])));
    this.sent++;
  }

  /** Resolves when the broker has acknowledged every message published so far. */
  async drain(timeoutMs = 30_000) {
    if (this.unacked.size === 0) return;
    let timer;
    await Promise.race([
      new Promise((resolve) => this.waiters.push(resolve)),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${this.unacked.size} messages not acknowledged by the broker`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  async close() {
    if (!this.sock || this.sock.destroyed) return;
    this.sock.write(packet(14, 0, Buffer.alloc(0))); // DISCONNECT
    this.sock.end();
    await Promise.race([once(this.sock, 'close'), new Promise((r) => setTimeout(r, 2000))]);
    this.sock.destroy();
  }
}
