import { describe, expect, it } from 'vitest';
import { Api, Session } from '../common/api';
import { FrameBatcher } from '../common/frame';
import { TestSocket as Sock } from '../common/testsocket';
import { WsClient } from '../common/ws';
import type { ChatMessage } from '../types';
import { ChatStore } from './store';

function setup(pages: Record<string, ChatMessage[]> = {}, rooms: unknown[] = []) {
  let sock!: Sock;
  const ws = new WsClient({
    url: 'ws://x/ws',
    getToken: () => 't',
    createSocket: () => (sock = new Sock()),
  });
  const fakeFetch = (async (url: string) => {
    const u = new URL(url, 'http://x');
    const m = /^\/api\/rooms\/([^/]+)\/messages$/.exec(u.pathname);
    const body = m ? { messages: pages[decodeURIComponent(m[1]) + (u.searchParams.get('before') ?? '')] ?? [] } : { rooms };
    return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
  }) as typeof fetch;
  const api = new Api(new Session(undefined), fakeFetch);
  const chat = new ChatStore(new FrameBatcher(() => {}), ws, api);
  chat.setMe('alice');
  ws.start();
  sock.onopen?.({});
  sock.receive({ type: 'auth_ok', data: { user: 'alice', role: 'analyst' } });
  return { chat, ws, sock: () => sock };
}

const msg = (id: number, user = 'bob', room = 'general'): ChatMessage => ({
  id,
  room,
  user,
  content: 'm' + id,
  ts: '2026-01-01T00:00:00Z',
});

describe('ChatStore', () => {
  it('shows a message once whether it came over REST, live, or both', async () => {
    const { chat, sock } = setup({ general: [msg(1), msg(2)] });
    await chat.loadLatest('general');
    sock().receive({ type: 'chat_message', data: msg(2) });
    sock().receive({ type: 'chat_message', data: msg(3) });
    sock().receive({ type: 'batch', data: [{ type: 'chat_message', data: msg(3) }] });
    expect(chat.rooms.get('general')!.messages.map((m) => m.id)).toEqual([1, 2, 3]);
  });

  it('sends own messages without a local echo: the server echo shows them once', () => {
    const { chat, sock } = setup();
    expect(chat.submit('hello <b>world</b>')).toBe(true);
    const sent = sock().sent.filter((m) => m.type === 'chat_message');
    expect(sent).toHaveLength(1);
    expect(sent[0].data).toEqual({ room: 'general', content: 'hello <b>world</b>' });
    expect(chat.rooms.get('general')?.messages ?? []).toHaveLength(0);
    sock().receive({ type: 'chat_message', ref: sent[0].id, data: { ...msg(9, 'alice'), content: 'hello <b>world</b>' } });
    expect(chat.rooms.get('general')!.messages.map((m) => m.content)).toEqual(['hello <b>world</b>']);
  });

  it('loads older pages before the oldest shown message', async () => {
    const page = Array.from({ length: 50 }, (_, i) => msg(51 + i));
    const { chat } = setup({ general: page, general51: [msg(49), msg(50)] });
    await chat.loadLatest('general');
    await chat.loadOlder('general');
    const v = chat.rooms.get('general')!;
    expect(v.messages[0].id).toBe(49);
    expect(v.messages).toHaveLength(52);
    expect(v.complete).toBe(true);
  });

  it('turns slash commands into protocol requests', () => {
    const { chat, sock } = setup();
    chat.submit('/join ops');
    chat.submit('/msg bob hi there');
    chat.submit('/rooms');
    const types = sock()
      .sent.filter((m) => m.type !== 'auth')
      .map((m) => [m.type, m.data]);
    expect(types).toEqual([
      ['join_room', { room: 'ops' }],
      ['direct_message', { to: 'bob', content: 'hi there' }],
      ['list_rooms', undefined],
    ]);
    expect(chat.current).toBe('@bob');
  });

  it('tags messages with the alert being discussed', () => {
    const { chat, sock } = setup();
    chat.select('alerts', '17');
    chat.submit('looking at it');
    const sent = sock().sent.find((m) => m.type === 'chat_message')!;
    expect(sent.data).toEqual({ room: 'alerts', content: 'looking at it', alert_id: 17 });
  });

  it('de-duplicates direct messages and files them under the other user', () => {
    const { chat, sock } = setup();
    const dm = { type: 'direct_message', id: 5, data: { id: 77, from: 'bob', to: 'alice', content: 'yo', ts: '2026-01-01T00:00:00Z' } };
    sock().receive(dm);
    sock().receive({ ...dm, id: 6 });
    sock().receive({ type: 'direct_message', id: 7, data: { id: 78, from: 'alice', to: 'bob', content: 'hey', ts: '2026-01-01T00:00:01Z' } });
    expect(chat.dms.get('bob')!.messages.map((m) => m.content)).toEqual(['yo', 'hey']);
  });
  it('keeps the room list right from room_created and room_deleted deltas', async () => {
    const { chat, sock } = setup();
    const info = (room: string, extra: Record<string, unknown> = {}) => ({
      room,
      kind: 'chat',
      creator: 'bob',
      created_at: '2026-01-01T00:00:00Z',
      fixed: false,
      members: 1,
      online: 1,
      ...extra,
    });
    sock().receive({
      type: 'room_list',
      ref: 'r1',
      data: { rooms: [info('alerts', { kind: 'alerts', fixed: true }), info('general', { fixed: true }), info('ops', { member: true })] },
    });
    sock().receive({ type: 'room_created', data: info('night') });
    sock().receive({ type: 'batch', data: [{ type: 'room_created', data: info('day') }] });
    const names = () => [...chat.rooms.values()].filter((v) => v.info).map((v) => v.name).sort();
    expect(names()).toEqual(['alerts', 'day', 'general', 'night', 'ops']);
    expect(chat.rooms.get('night')!.info!.members).toBe(1);
    // A repeat of a known room keeps what REST said about membership.
    sock().receive({ type: 'room_created', data: info('ops') });
    expect(chat.isMember('ops')).toBe(true);
    // Deleting goes to everyone, members or not.
    sock().receive({ type: 'room_deleted', data: { room: 'night', by: 'root' } });
    expect(names()).toEqual(['alerts', 'day', 'general', 'ops']);
    // Malformed deltas change nothing.
    sock().receive({ type: 'room_created', data: { nope: 1 } });
    sock().receive({ type: 'room_created' });
    expect(names()).toEqual(['alerts', 'day', 'general', 'ops']);
  });

  it('keeps online and member counts and the member list in step with presence', async () => {
    const info = (room: string, members: number, online: number) => ({ room, kind: 'chat', members, online, member: true });
    const { chat, sock } = setup({}, [info('general', 3, 1), info('ops', 2, 1)]);
    await chat.loadRoomList();
    const counts = (r: string) => [chat.rooms.get(r)!.info!.members, chat.rooms.get(r)!.info!.online];
    expect(counts('general')).toEqual([3, 1]);
    sock().receive({ type: 'user_joined', data: { room: 'general', user: 'bob', reason: 'online' } });
    expect(counts('general')).toEqual([3, 2]);
    sock().receive({ type: 'user_left', data: { room: 'general', user: 'bob', reason: 'offline' } });
    expect(counts('general')).toEqual([3, 1]);
    sock().receive({ type: 'user_joined', data: { room: 'general', user: 'carol' } });
    expect(counts('general')).toEqual([4, 2]);
    sock().receive({ type: 'user_left', data: { room: 'general', user: 'carol', reason: 'left' } });
    expect(counts('general')).toEqual([3, 1]);
    // With the member list (the joined reply) the list is the truth.
    sock().receive({
      type: 'joined',
      data: { room: 'ops', members: [{ user: 'alice', online: true }, { user: 'bob', online: false }], history: [] },
    });
    expect(counts('ops')).toEqual([2, 1]);
    sock().receive({ type: 'user_joined', data: { room: 'ops', user: 'bob', reason: 'online' } });
    sock().receive({ type: 'user_joined', data: { room: 'ops', user: 'bob', reason: 'online' } });
    expect(counts('ops')).toEqual([2, 2]);
    expect(chat.rooms.get('ops')!.members).toEqual([{ user: 'alice', online: true }, { user: 'bob', online: true }]);
    sock().receive({ type: 'user_left', data: { room: 'ops', user: 'bob', reason: 'left' } });
    expect(counts('ops')).toEqual([1, 1]);
    expect(chat.rooms.get('ops')!.members!.map((m) => m.user)).toEqual(['alice']);
    // Rooms come and go one at a time.
    sock().receive({ type: 'room_created', data: info('night', 1, 1) });
    expect(chat.rooms.has('night')).toBe(true);
    sock().receive({ type: 'room_deleted', data: { room: 'night' } });
    expect(chat.rooms.has('night')).toBe(false);
  });

  it('drops the conversation of a direct message the server refused', async () => {
    const { chat, sock } = setup();
    chat.submit('/msg nobody hello');
    expect(chat.current).toBe('@nobody');
    const req = sock().sent.find((m) => m.type === 'direct_message')!;
    sock().receive({ type: 'error', ref: req.id, data: { code: 'unknown_user', message: 'no such user' } });
    await new Promise((r) => setTimeout(r, 0));
    expect(chat.dms.has('nobody')).toBe(false);
    expect(chat.current).toBe('general');
    expect(chat.notice?.error).toBe(true);
  });
});
