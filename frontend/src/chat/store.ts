// Rooms, messages, typing, presence and direct messages. Fed by REST
// (room list, history pages) and /ws (live messages and replies); all views
// read from here. Messages are keyed by id so a message seen over REST and
// over /ws, or twice after a reconnect, is shown once.

import { type Api, isMissingEndpoint } from '../common/api';
import { errorText, parseTs } from '../common/format';
import { Emitter } from '../common/emitter';
import { type FrameBatcher, Observable } from '../common/frame';
import type { WsClient } from '../common/ws';
import type {
  ChatMessage,
  DirectMessage,
  Envelope,
  HistoryData,
  JoinedData,
  RoomCreatedData,
  RoomDeletedData,
  RoomInfo,
  RoomListData,
  RoomMember,
  UserJoinedData,
  UserLeftData,
  UserTypingData,
} from '../types';
import type { Availability } from '../alerts/store';
import { HELP_TEXT, parseChatInput } from './slash';

export const PAGE = 50;
const TYPING_SHOW_MS = 3000;
const TYPING_SEND_EVERY_MS = 2000;
const FIXED_ROOMS = ['general', 'alerts'];

/** A room with its counts (0 until the server sends them). */
export type RoomCounts = RoomInfo & { members: number; online: number };

export interface RoomView {
  name: string;
  info?: RoomCounts;
  /** Sorted by id, oldest first, no duplicates. */
  messages: ChatMessage[];
  /** No older history on the server. */
  complete: boolean;
  loading: boolean;
  loaded: boolean;
  members?: RoomMember[];
  typing: Map<string, number>;
  unread: number;
  error?: string;
}

export interface DmView {
  user: string;
  messages: DirectMessage[];
  unread: number;
}

/** What the message list shows: a room, or a direct conversation (key "@user"). */
export type ViewKey = string;

interface WatchResult {
  msg?: Envelope;
  code?: string;
}

export function dmKey(user: string): ViewKey {
  return '@' + user;
}

export class ChatStore {
  readonly changed: Observable;
  readonly rooms = new Map<string, RoomView>();
  readonly dms = new Map<string, DmView>();
  private joinedRooms = new Set<string>(FIXED_ROOMS);
  current: ViewKey = 'general';
  /** When set, room "alerts" shows only the discussion of this alert. */
  alertFilter: string | null = null;
  availability: Availability = 'unknown';
  /** A one-line note for the message box area (errors, /help, /rooms output). */
  notice: { text: string[]; error: boolean } | null = null;
  me = '';
  /** The highest direct message id seen: the resume cursor of the direct stream. */
  directCursor: number | undefined;
  /** Live messages from others in the room on screen, for the screen reader's live region. */
  readonly spoken = new Emitter<ChatMessage>();
  private lastTypingSent = new Map<string, number>();
  private readonly ws: WsClient;
  private readonly api: Api;

  constructor(batcher: FrameBatcher, ws: WsClient, api: Api) {
    this.changed = new Observable(batcher);
    this.ws = ws;
    this.api = api;
    ws.on<ChatMessage>('chat_message', (m) => m.data && this.addMessages(m.data.room, [m.data], true));
    // The full list comes only as the reply to list_rooms (and over REST);
    // changes arrive one room at a time.
    ws.on<RoomListData>('room_list', (m) => m.data && this.applyRoomList(m.data.rooms));
    ws.on<RoomCreatedData>('room_created', (m) => m.data && this.onCreated(m.data));
    ws.on<JoinedData>('joined', (m) => m.data && this.onJoined(m.data));
    ws.on<{ room: string }>('left', (m) => m.data && this.onLeft(m.data.room));
    // reason "online": a member came back (already counted as a member);
    // none or "joined": a new member. user_left "offline": still a member,
    // just not online; "left" (or none): gone from the room.
    ws.on<UserJoinedData>('user_joined', (m) => m.data && this.onPresence(m.data.room, m.data.user, true, m.data.reason !== 'online'));
    ws.on<UserLeftData>('user_left', (m) => m.data && this.onPresence(m.data.room, m.data.user, false, m.data.reason !== 'offline'));
    // The room list loaded at start may predate this page's own connection
    // (the server counts a user online from their first socket and never
    // tells them about themselves): take it again once connected, so the
    // counts include oneself, and after a reconnect, so they are current.
    ws.on('auth_ok', () => {
      if (this.availability !== 'missing') void this.loadRoomList();
    });
    ws.on<UserTypingData>('user_typing', (m) => m.data && this.onTyping(m.data));
    ws.on<HistoryData>('history', (m) => m.data && this.addMessages(m.data.room, m.data.messages ?? [], false));
    ws.on<DirectMessage>('direct_message', (m) => m.data && this.onDirect(m.data));
    ws.on<RoomDeletedData>('room_deleted', (m) => m.data && this.onDeleted(m.data.room));
  }

  setMe(user: string): void {
    this.me = user;
    try {
      const saved = JSON.parse(localStorage.getItem('watchroom.rooms.' + user) ?? '[]') as unknown;
      if (Array.isArray(saved)) for (const r of saved) if (typeof r === 'string') this.joinedRooms.add(r);
    } catch {
      // no storage
    }
  }

  private saveJoined(): void {
    try {
      const extra = [...this.joinedRooms].filter((r) => !FIXED_ROOMS.includes(r));
      localStorage.setItem('watchroom.rooms.' + this.me, JSON.stringify(extra));
    } catch {
      // no storage
    }
  }

  isMember(room: string): boolean {
    const v = this.rooms.get(room);
    if (v?.info?.member !== undefined) return v.info.member;
    return this.joinedRooms.has(room);
  }

  private room(name: string): RoomView {
    let v = this.rooms.get(name);
    if (!v) {
      v = { name, messages: [], complete: false, loading: false, loaded: false, typing: new Map(), unread: 0 };
      this.rooms.set(name, v);
    }
    return v;
  }

  // ---- loading -----------------------------------------------------------

  /** Loads the room list and the current room (page load and reconnect). */
  async reload(): Promise<void> {
    if (!(await this.loadRoomList())) return;
    const loaded = [...this.rooms.values()].filter((v) => v.loaded).map((v) => v.name);
    const toLoad = new Set([...loaded, ...(this.current.startsWith('@') ? [] : [this.current])]);
    await Promise.all([...toLoad].map((r) => this.loadLatest(r)));
    if (this.alertFilter) await this.loadAlertDiscussion(this.alertFilter);
  }

  /** Loads the room list over REST; false when the server has no chat. */
  async loadRoomList(): Promise<boolean> {
    try {
      const res = await this.api.get<RoomListData | RoomInfo[]>('/api/rooms');
      this.availability = 'available';
      this.applyRoomList(Array.isArray(res) ? res : (res.rooms ?? []));
    } catch (err) {
      if (isMissingEndpoint(err)) {
        this.availability = 'missing';
        this.changed.changed();
        return false;
      }
      this.setNotice([`Could not load rooms: ${errorText(err)}`], true);
    }
    return true;
  }

  /** Fetches the newest page of a room and merges it; replaces the cache when there is a gap. */
  async loadLatest(name: string): Promise<void> {
    const v = this.room(name);
    v.loading = true;
    this.changed.changed();
    try {
      const res = await this.api.get<{ messages: ChatMessage[] }>(
        `/api/rooms/${encodeURIComponent(name)}/messages`,
        { limit: PAGE },
      );
      const msgs = sortById(res.messages ?? []);
      const newest = v.messages[v.messages.length - 1];
      if (newest && msgs.length > 0 && msgs.length >= PAGE && msgs[0].id > newest.id) {
        // More than a page was missed: keep only the fresh page rather than
        // show a silent hole; older pages load again on scroll-up.
        v.messages = [];
        v.complete = false;
      }
      if (!v.loaded && msgs.length < PAGE) v.complete = true;
      v.loaded = true;
      v.error = undefined;
      this.addMessages(name, msgs, false);
    } catch (err) {
      v.error = isMissingEndpoint(err) ? 'History is not available.' : `Could not load messages: ${errorText(err)}`;
    } finally {
      v.loading = false;
      this.changed.changed();
    }
  }

  /** Loads the page before the oldest message shown (scroll-up). */
  async loadOlder(name: string): Promise<void> {
    const v = this.room(name);
    if (v.loading || v.complete) return;
    const oldest = v.messages[0];
    if (!oldest) return this.loadLatest(name);
    v.loading = true;
    this.changed.changed();
    try {
      const res = await this.api.get<{ messages: ChatMessage[] }>(
        `/api/rooms/${encodeURIComponent(name)}/messages`,
        { before: oldest.id, limit: PAGE },
      );
      const msgs = res.messages ?? [];
      if (msgs.length < PAGE) v.complete = true;
      this.addMessages(name, msgs, false);
    } catch (err) {
      v.error = `Could not load older messages: ${errorText(err)}`;
    } finally {
      v.loading = false;
      this.changed.changed();
    }
  }

  async loadAlertDiscussion(alertId: string): Promise<void> {
    try {
      const res = await this.api.get<Record<string, unknown>>(`/api/alerts/${encodeURIComponent(alertId)}`);
      const inner = (res.alert ?? {}) as Record<string, unknown>;
      const msgs = (res.messages ?? res.discussion ?? inner.messages ?? []) as ChatMessage[];
      if (Array.isArray(msgs)) this.addMessages('alerts', msgs, false);
    } catch {
      // The room's own history still shows what is loaded.
    }
  }

  /**
   * The resume cursors of the rooms: per room this page shows messages of
   * and receives live messages for (a member), the id of the last message
   * held; 0 for a loaded room that is empty. Rooms never loaded are left
   * out: they load over REST when opened.
   */
  roomCursors(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const v of this.rooms.values()) {
      if (!this.isMember(v.name)) continue;
      const last = v.messages[v.messages.length - 1];
      if (last) out[v.name] = last.id;
      else if (v.loaded) out[v.name] = 0;
    }
    return out;
  }

  // ---- view selection ----------------------------------------------------

  select(view: ViewKey, alertFilter: string | null = null): void {
    this.current = view;
    this.alertFilter = view === 'alerts' ? alertFilter : null;
    this.notice = null;
    if (view.startsWith('@')) {
      const dm = this.dms.get(view.slice(1));
      if (dm) dm.unread = 0;
    } else {
      const v = this.room(view);
      v.unread = 0;
      if (!v.loaded && !v.loading && this.availability !== 'missing') void this.loadLatest(view);
      if (alertFilter) void this.loadAlertDiscussion(alertFilter);
    }
    this.changed.changed();
  }

  /** Messages of the current room view, filtered to the alert when one is selected. */
  visibleMessages(): ChatMessage[] {
    const v = this.rooms.get(this.current);
    if (!v) return [];
    if (this.alertFilter === null) return v.messages;
    return v.messages.filter((m) => m.alert_id !== undefined && m.alert_id !== null && String(m.alert_id) === this.alertFilter);
  }

  typingUsers(now: number): string[] {
    const v = this.rooms.get(this.current);
    if (!v) return [];
    const out: string[] = [];
    for (const [u, until] of v.typing) if (until > now && u !== this.me) out.push(u);
    return out.sort();
  }

  // ---- incoming ----------------------------------------------------------

  addMessages(room: string, msgs: ChatMessage[], live: boolean): void {
    if (!room || !Array.isArray(msgs) || msgs.length === 0) return;
    const v = this.room(room);
    const byId = new Map<number, ChatMessage>();
    for (const m of v.messages) byId.set(m.id, m);
    let added = 0;
    for (const m of msgs) {
      if (!m || typeof m.id !== 'number') continue;
      if (!byId.has(m.id)) added++;
      byId.set(m.id, m);
      v.typing.delete(m.user);
    }
    if (added === 0) return;
    v.messages = sortById([...byId.values()]);
    if (live && this.current !== room) v.unread += added;
    if (live && this.current === room) for (const m of msgs) if (m.user !== this.me) this.spoken.emit(m);
    if (live && !this.joinedRooms.has(room)) {
      // Receiving a room's messages means we are in it.
      this.joinedRooms.add(room);
    }
    this.changed.changed();
  }

  private applyRoomList(list: RoomInfo[]): void {
    if (!Array.isArray(list)) return;
    const names = new Set<string>();
    for (const info of list) {
      if (!info || typeof info.room !== 'string') continue;
      names.add(info.room);
      this.room(info.room).info = withCounts(info);
    }
    for (const name of [...this.rooms.keys()]) {
      if (!names.has(name) && !FIXED_ROOMS.includes(name)) this.rooms.delete(name);
    }
    this.changed.changed();
  }

  private onJoined(d: JoinedData): void {
    const v = this.room(d.room);
    this.joinedRooms.add(d.room);
    this.saveJoined();
    if (Array.isArray(d.members)) {
      v.members = sortMembers(d.members);
      // The reply lists everyone: the counts follow from it.
      if (v.info) v.info = { ...v.info, member: true, members: v.members.length, online: v.members.filter((m) => m.online).length };
    } else if (v.info && !v.info.member) {
      v.info = { ...v.info, member: true, members: v.info.members + 1, online: v.info.online + 1 };
    }
    if (Array.isArray(d.history)) {
      if (!v.loaded && d.history.length < PAGE) v.complete = true;
      v.loaded = true;
      this.addMessages(d.room, d.history, false);
    }
    this.changed.changed();
  }

  private onLeft(room: string): void {
    const v = this.rooms.get(room);
    if (v?.info && this.isMember(room)) {
      v.info = { ...v.info, member: false, members: Math.max(0, v.info.members - 1), online: Math.max(0, v.info.online - 1) };
    }
    if (v) v.members = undefined;
    this.joinedRooms.delete(room);
    this.saveJoined();
    if (this.current === room) this.select('general');
    this.changed.changed();
  }

  /**
   * Applies user_joined (online) or user_left (!online). membership: the
   * user joined or left the room, not merely came or went. Counts move by
   * one; when the member list is known it is the truth and a repeated event
   * changes nothing.
   */
  private onPresence(room: string, user: string, online: boolean, membership: boolean): void {
    const v = this.rooms.get(room);
    if (!v) return;
    if (!online) v.typing.delete(user);
    if (v.members) {
      const others = v.members.filter((m) => m.user !== user);
      v.members = !online && membership ? others : sortMembers([...others, { user, online }]);
      if (v.info) v.info = { ...v.info, members: v.members.length, online: v.members.filter((m) => m.online).length };
    } else if (v.info) {
      const d = online ? 1 : -1;
      v.info = {
        ...v.info,
        members: Math.max(0, v.info.members + (membership ? d : 0)),
        online: Math.max(0, v.info.online + d),
      };
    }
    this.changed.changed();
  }

  private onTyping(d: UserTypingData): void {
    if (d.user === this.me) return;
    const v = this.room(d.room);
    v.typing.set(d.user, Date.now() + TYPING_SHOW_MS);
    this.changed.changed();
  }

  private onDirect(d: DirectMessage): void {
    const from = d.from;
    const other = from === this.me ? d.to : from;
    if (!other) return;
    let dm = this.dms.get(other);
    if (!dm) {
      dm = { user: other, messages: [], unread: 0 };
      this.dms.set(other, dm);
    }
    if (typeof d.id === 'number' && (this.directCursor === undefined || d.id > this.directCursor)) this.directCursor = d.id;
    // A replayed message, or a redelivery of one not acked in time, is
    // already here: keep it once.
    if (d.id !== undefined && dm.messages.some((m) => m.id === d.id)) return;
    dm.messages = [...dm.messages, d].sort((a, b) => (parseTs(a.ts) || 0) - (parseTs(b.ts) || 0));
    if (this.current !== dmKey(other) && from !== this.me) dm.unread++;
    this.changed.changed();
  }

  private onCreated(info: RoomInfo): void {
    if (!info || typeof info.room !== 'string') return;
    const v = this.room(info.room);
    // Keep what is known of an existing entry (e.g. member from REST).
    v.info = { ...withCounts(info), member: v.info?.member ?? info.member };
    this.changed.changed();
  }

  private onDeleted(room: string): void {
    this.rooms.delete(room);
    this.joinedRooms.delete(room);
    this.saveJoined();
    if (this.current === room) {
      this.select('general');
      this.setNotice([`Room ${room} was deleted.`], false);
    }
    this.changed.changed();
  }

  // ---- outgoing ----------------------------------------------------------

  setNotice(text: string[], error: boolean): void {
    this.notice = { text, error };
    this.changed.changed();
  }

  clearNotice(): void {
    if (!this.notice) return;
    this.notice = null;
    this.changed.changed();
  }

  /**
   * Reports a failed request in the notice line. A missing reply is not
   * reported for plain sends: the message shows up (or not) by itself.
   */
  private async watch(reply: Promise<Envelope>, what: string, quietTimeout = false): Promise<WatchResult> {
    try {
      return { msg: await reply };
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'error';
      if (code === 'unknown_type') this.setNotice([`${what}: this server does not support chat yet.`], true);
      else if (code === 'stopped' || (code === 'timeout' && quietTimeout)) {
        // nothing to tell
      } else this.setNotice([`${what}: ${errorText(err)}`], true);
      return { code };
    }
  }

  /** Handles a line typed into the message box. Returns true when the box should be cleared. */
  submit(text: string): boolean {
    const input = parseChatInput(text);
    const here = this.current;
    switch (input.kind) {
      case 'empty':
        return false;
      case 'invalid':
        this.setNotice([input.message], true);
        return false;
      case 'help':
        this.setNotice(HELP_TEXT, false);
        return true;
      case 'rooms': {
        const { reply } = this.ws.request('list_rooms', undefined, {});
        void this.watch(reply, 'List rooms').then(({ msg }) => {
          const rooms = (msg?.data as RoomListData | undefined)?.rooms;
          if (!rooms) return;
          this.setNotice(
            rooms.length ? rooms.map((r) => `#${r.room} (${r.members}, ${r.online} online) ${r.kind}`) : ['No rooms.'],
            false,
          );
        });
        return true;
      }
      case 'join':
        this.join(input.room);
        return true;
      case 'create': {
        const { reply } = this.ws.request('create_room', { room: input.room, kind: 'chat' }, { queue: true });
        void this.watch(reply, `Create ${input.room}`, true).then(({ code }) => {
          if (!code || code === 'timeout') this.join(input.room);
        });
        return true;
      }
      case 'leave': {
        const room = input.room ?? (here.startsWith('@') ? '' : here);
        if (!room) {
          this.setNotice(['Not in a room.'], true);
          return false;
        }
        if (FIXED_ROOMS.includes(room)) {
          this.setNotice([`Everyone stays in #${room}.`], true);
          return false;
        }
        const { reply } = this.ws.request('leave_room', { room }, { queue: true });
        void this.watch(reply, `Leave ${room}`).then(({ msg }) => msg && this.onLeft(room));
        return true;
      }
      case 'msg': {
        const fresh = !this.dms.has(input.to);
        if (fresh) this.dms.set(input.to, { user: input.to, messages: [], unread: 0 });
        const { reply } = this.ws.request('direct_message', { to: input.to, content: input.content }, { queue: true });
        void this.watch(reply, `Message to ${input.to}`, true).then(({ code }) => {
          // Refused (no such user): no conversation to keep. The notice says why.
          const dm = this.dms.get(input.to);
          if (!fresh || !code || code === 'timeout' || code === 'stopped' || !dm || dm.messages.length > 0) return;
          this.dms.delete(input.to);
          if (this.current === dmKey(input.to)) {
            const notice = this.notice;
            this.select('general');
            this.notice = notice;
            this.changed.changed();
          }
        });
        this.select(dmKey(input.to));
        return true;
      }
      case 'message': {
        if (here.startsWith('@')) {
          const to = here.slice(1);
          const { reply } = this.ws.request('direct_message', { to, content: input.content }, { queue: true });
          void this.watch(reply, `Message to ${to}`, true);
          return true;
        }
        const data: { room: string; content: string; alert_id?: number | string } = {
          room: here,
          content: input.content,
        };
        if (here === 'alerts' && this.alertFilter !== null) {
          const n = Number(this.alertFilter);
          data.alert_id = Number.isFinite(n) && String(n) === this.alertFilter ? n : this.alertFilter;
        }
        const { reply } = this.ws.request('chat_message', data, { queue: true });
        void this.watch(reply, 'Send', true);
        this.lastTypingSent.delete(here);
        return true;
      }
    }
  }

  join(room: string): void {
    const { reply } = this.ws.request('join_room', { room }, { queue: true });
    void this.watch(reply, `Join ${room}`).then(({ msg }) => {
      if (msg) this.select(room);
    });
  }

  /** Called on input; forwards at most one typing notice per room per 2 s. */
  typing(text: string): void {
    const room = this.current;
    if (room.startsWith('@') || !text.trim() || text.startsWith('/')) return;
    const now = Date.now();
    if (now - (this.lastTypingSent.get(room) ?? 0) < TYPING_SEND_EVERY_MS) return;
    this.lastTypingSent.set(room, now);
    this.ws.send({ type: 'typing', data: { room } });
  }
}

function sortMembers(ms: RoomMember[]): RoomMember[] {
  return [...ms].sort((a, b) => a.user.localeCompare(b.user));
}

function sortById(msgs: ChatMessage[]): ChatMessage[] {
  return [...msgs].sort((a, b) => a.id - b.id);
}

function withCounts(info: RoomInfo): RoomCounts {
  return { ...info, members: info.members ?? 0, online: info.online ?? 0 };
}
