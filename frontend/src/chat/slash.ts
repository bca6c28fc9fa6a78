// Parsing of what people type into the message box: plain text, or one of
// the commands known from chat clients. Pure, so it is unit tested alone.

export type ChatInput =
  | { kind: 'message'; content: string }
  | { kind: 'join'; room: string }
  | { kind: 'create'; room: string }
  | { kind: 'leave'; room?: string }
  | { kind: 'rooms' }
  | { kind: 'msg'; to: string; content: string }
  | { kind: 'help' }
  | { kind: 'empty' }
  | { kind: 'invalid'; message: string };

export const MAX_CONTENT = 2000;

const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;
const USER_RE = /^[^\s]{1,64}$/;

export const HELP_TEXT = [
  '/join ROOM — join a room (and switch to it)',
  '/create ROOM — create a chat room and join it',
  '/leave — leave the current room',
  '/rooms — list rooms with member and online counts',
  '/msg USER TEXT — send a direct message',
  '/help — this list',
  'Start a message with // to send a text beginning with /',
];

/** Reports whether name is a valid room name: 1–64 letters, digits, '-' or '_'. */
export function validRoomName(name: string): boolean {
  return ROOM_RE.test(name);
}

function roomArg(arg: string, cmd: string): ChatInput | string {
  // The whole argument is the name: "/join bad room!" names "bad room!",
  // an invalid name, not a room "bad" with a stray word.
  const room = arg.trim().replace(/^#/, '');
  if (!room) return { kind: 'invalid', message: `Usage: /${cmd} ROOM` };
  if (!validRoomName(room)) {
    return { kind: 'invalid', message: `"${room}" is not a valid room name (1–64 letters, digits, - or _)` };
  }
  return room;
}

function contentCheck(content: string): ChatInput | null {
  if (content.length > MAX_CONTENT) {
    return { kind: 'invalid', message: `Message too long (${content.length} of at most ${MAX_CONTENT} characters)` };
  }
  return null;
}

export function parseChatInput(raw: string): ChatInput {
  const text = raw.trim();
  if (!text) return { kind: 'empty' };
  if (text.startsWith('//')) {
    const content = text.slice(1);
    return contentCheck(content) ?? { kind: 'message', content };
  }
  if (!text.startsWith('/')) return contentCheck(text) ?? { kind: 'message', content: text };

  const m = /^\/(\S+)\s*([\s\S]*)$/.exec(text)!;
  const cmd = m[1].toLowerCase();
  const rest = m[2].trim();
  switch (cmd) {
    case 'join':
    case 'j': {
      const r = roomArg(rest, 'join');
      if (typeof r !== 'string') return r;
      return { kind: 'join', room: r };
    }
    case 'create': {
      const r = roomArg(rest, 'create');
      if (typeof r !== 'string') return r;
      return { kind: 'create', room: r };
    }
    case 'leave':
    case 'part': {
      if (!rest) return { kind: 'leave' };
      const r = roomArg(rest, 'leave');
      if (typeof r !== 'string') return r;
      return { kind: 'leave', room: r };
    }
    case 'rooms':
    case 'list':
      return { kind: 'rooms' };
    case 'msg':
    case 'dm': {
      const mm = /^(\S+)\s+([\s\S]+)$/.exec(rest);
      if (!mm) return { kind: 'invalid', message: 'Usage: /msg USER TEXT' };
      const to = mm[1].replace(/^@/, '');
      if (!USER_RE.test(to)) return { kind: 'invalid', message: 'Usage: /msg USER TEXT' };
      const content = mm[2].trim();
      return contentCheck(content) ?? { kind: 'msg', to, content };
    }
    case 'help':
    case '?':
      return { kind: 'help' };
    default:
      return { kind: 'invalid', message: `Unknown command /${cmd}. Type /help for the list.` };
  }
}
