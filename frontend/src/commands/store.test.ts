import { describe, expect, it } from 'vitest';
import { Api, Session } from '../common/api';
import { FrameBatcher } from '../common/frame';
import { TestSocket as Sock } from '../common/testsocket';
import { WsClient } from '../common/ws';
import { CommandStore } from './store';

function setup() {
  let sock!: Sock;
  const ws = new WsClient({ url: 'ws://x/ws', getToken: () => 't', createSocket: () => (sock = new Sock()) });
  const fakeFetch = (async () => new Response('{"commands":[]}', { status: 200 })) as typeof fetch;
  const store = new CommandStore(new FrameBatcher(() => {}), ws, new Api(new Session(undefined), fakeFetch));
  ws.start();
  sock.onopen?.({});
  sock.receive({ type: 'auth_ok', data: { user: 'olga', role: 'operator' } });
  return { store, sock: () => sock };
}

const outcome = (ref: unknown, id: string) => ({
  type: 'command_response',
  id: 9,
  ref,
  data: { command_id: id, sensor_id: 's-1', action: 'ping', status: 'success', message: 'ok', latency_ms: 3 },
});

describe('CommandStore', () => {
  it('settles a command by its request id', async () => {
    const { store, sock } = setup();
    const c = store.send('s-1', 'ping');
    const req = sock().sent.find((m) => m.type === 'command')!;
    sock().receive({ type: 'command_sent', ref: req.id, data: { command_id: 'c1', status: 'pending' } });
    await Promise.resolve();
    sock().receive(outcome(req.id, 'c1'));
    expect(c.status).toBe('success');
  });

  it('settles a command finished by another instance (ref null) by its command id', async () => {
    const { store, sock } = setup();
    const c = store.send('s-1', 'ping');
    const req = sock().sent.find((m) => m.type === 'command')!;
    sock().receive({ type: 'command_sent', ref: req.id, data: { command_id: 'c2', status: 'pending' } });
    await Promise.resolve();
    sock().receive(outcome(null, 'c2'));
    expect(c.status).toBe('success');
    expect(c.commandId).toBe('c2');
  });

  it('keeps an outcome that comes before command_sent until the command id is known', async () => {
    const { store, sock } = setup();
    const c = store.send('s-1', 'ping');
    const req = sock().sent.find((m) => m.type === 'command')!;
    sock().receive(outcome(null, 'c3'));
    expect(c.status).toBe('pending');
    sock().receive({ type: 'command_sent', ref: req.id, data: { command_id: 'c3', status: 'pending' } });
    await Promise.resolve();
    await Promise.resolve();
    expect(c.status).toBe('success');
  });
});
