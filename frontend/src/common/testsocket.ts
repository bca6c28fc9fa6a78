// A WebSocketLike for tests of the stores: open at once, records what is
// sent (decoded), and receive() delivers a server message. Imported by
// tests only.

import type { Envelope } from '../types';
import type { WebSocketLike } from './ws';

export class TestSocket implements WebSocketLike {
  readyState = 1;
  sent: Envelope[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  send(d: string) {
    this.sent.push(JSON.parse(d) as Envelope);
  }
  close() {}
  receive(m: unknown) {
    this.onmessage?.({ data: JSON.stringify(m) });
  }
}
