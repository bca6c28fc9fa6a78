import { describe, expect, it } from 'vitest';
import { MAX_CONTENT, parseChatInput, validRoomName } from './slash';

describe('parseChatInput', () => {
  const cases: { name: string; in: string; want: ReturnType<typeof parseChatInput> }[] = [
    { name: 'plain text', in: 'hello there', want: { kind: 'message', content: 'hello there' } },
    { name: 'trimmed', in: '  hi  ', want: { kind: 'message', content: 'hi' } },
    { name: 'empty', in: '   ', want: { kind: 'empty' } },
    { name: 'html stays text', in: '<b>x</b>', want: { kind: 'message', content: '<b>x</b>' } },
    { name: 'escaped slash', in: '//shrug', want: { kind: 'message', content: '/shrug' } },
    { name: 'join', in: '/join ops-night', want: { kind: 'join', room: 'ops-night' } },
    { name: 'join with #', in: '/join #ops_2', want: { kind: 'join', room: 'ops_2' } },
    { name: 'join case-insensitive command', in: '/JOIN general', want: { kind: 'join', room: 'general' } },
    { name: 'join without room', in: '/join', want: { kind: 'invalid', message: 'Usage: /join ROOM' } },
    { name: 'join bad name', in: '/join bad.name', want: { kind: 'invalid', message: expect.stringContaining('not a valid room name') as unknown as string } },
    { name: 'join two words', in: '/join a b', want: { kind: 'invalid', message: '"a b" is not a valid room name (1–64 letters, digits, - or _)' } },
    { name: 'join bad room!', in: '/join bad room!', want: { kind: 'invalid', message: '"bad room!" is not a valid room name (1–64 letters, digits, - or _)' } },
    { name: 'create', in: '/create ops-night', want: { kind: 'create', room: 'ops-night' } },
    { name: 'create without room', in: '/create', want: { kind: 'invalid', message: 'Usage: /create ROOM' } },
    { name: 'leave current', in: '/leave', want: { kind: 'leave' } },
    { name: 'leave named', in: '/leave ops', want: { kind: 'leave', room: 'ops' } },
    { name: 'rooms', in: '/rooms', want: { kind: 'rooms' } },
    { name: 'msg', in: '/msg bob are you there?', want: { kind: 'msg', to: 'bob', content: 'are you there?' } },
    { name: 'msg with @', in: '/msg @bob hi', want: { kind: 'msg', to: 'bob', content: 'hi' } },
    { name: 'msg multi-line', in: '/msg bob a\nb', want: { kind: 'msg', to: 'bob', content: 'a\nb' } },
    { name: 'msg without text', in: '/msg bob', want: { kind: 'invalid', message: 'Usage: /msg USER TEXT' } },
    { name: 'msg without anything', in: '/msg', want: { kind: 'invalid', message: 'Usage: /msg USER TEXT' } },
    { name: 'help', in: '/help', want: { kind: 'help' } },
    { name: 'unknown', in: '/frobnicate x', want: { kind: 'invalid', message: 'Unknown command /frobnicate. Type /help for the list.' } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(parseChatInput(c.in)).toEqual(c.want);
    });
  }

  it('rejects content over the limit', () => {
    expect(parseChatInput('x'.repeat(MAX_CONTENT))).toEqual({ kind: 'message', content: 'x'.repeat(MAX_CONTENT) });
    expect(parseChatInput('x'.repeat(MAX_CONTENT + 1)).kind).toBe('invalid');
    expect(parseChatInput('/msg bob ' + 'x'.repeat(MAX_CONTENT + 1)).kind).toBe('invalid');
  });
});

describe('validRoomName', () => {
  it.each([
    ['general', true],
    ['ops-night_2', true],
    ['a'.repeat(64), true],
    ['a'.repeat(65), false],
    ['', false],
    ['with space', false],
    ['dot.ted', false],
    ['ünï', false],
  ])('%s → %s', (name, ok) => {
    expect(validRoomName(name)).toBe(ok);
  });
});
