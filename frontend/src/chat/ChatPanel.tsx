import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { formatDateTime, plural } from '../common/format';
import { useEmitter, useObservable } from '../common/hooks';
import { useServices } from '../services';
import type { ChatMessage, DirectMessage, Envelope, RoomMember } from '../types';
import { roleAtLeast } from '../types';
import { MAX_CONTENT, validRoomName } from './slash';
import { dmKey } from './store';

/**
 * Rooms, messages, typing and direct messages. Message content is only
 * ever rendered as text (JSX children), never as HTML.
 */
export function ChatPanel() {
  const svc = useServices();
  const chat = svc.chat;
  useObservable(chat.changed);
  useObservable(svc.clock);
  useEmitter(svc.ws.outboxChanged);

  if (chat.availability === 'missing') {
    return (
      <div class="chat">
        <div class="panel-head">
          <h2>Chat</h2>
        </div>
        <p class="muted small">Chat is not available on this server yet.</p>
      </div>
    );
  }

  const isDm = chat.current.startsWith('@');
  const room = isDm ? undefined : chat.rooms.get(chat.current);
  const canPost = roleAtLeast(svc.me?.role, 'analyst');
  const member = isDm || chat.isMember(chat.current);
  const typing = chat.typingUsers(svc.clock.now);

  return (
    <div class="chat">
      <div class="panel-head">
        <h2 id="chat-title">Chat</h2>
        <RoomDirectory />
      </div>
      <ViewTabs />
      <div class="chat-head">
        {isDm ? (
          <span>
            Direct messages with <strong>{chat.current.slice(1)}</strong>
          </span>
        ) : (
          <span>
            <strong>#{chat.current}</strong>
            {room?.info && (
              <span class="muted small" data-testid="room-counts">
                {' '}
                {plural(room.info.members, 'member')}, {room.info.online} online
              </span>
            )}
            {room?.members && <MemberList members={room.members} me={chat.me} />}
          </span>
        )}
        {chat.alertFilter !== null && (
          <span class="chip">
            alert #{chat.alertFilter}
            <button type="button" class="chip-x" aria-label="Show the whole room" onClick={() => chat.select('alerts')}>
              ×
            </button>
          </span>
        )}
        {!isDm && member && chat.current !== 'general' && chat.current !== 'alerts' && (
          <button type="button" class="link-button small" onClick={() => chat.submit('/leave')}>
            Leave
          </button>
        )}
      </div>
      {isDm ? <DmList user={chat.current.slice(1)} /> : <MessageList room={chat.current} />}
      <div class="typing small muted" aria-live="polite">
        {typing.length === 1 ? `${typing[0]} is typing…` : typing.length > 1 ? `${typing.join(', ')} are typing…` : ''}
      </div>
      {chat.notice && (
        <div class={`notice small${chat.notice.error ? ' error' : ''}`} role={chat.notice.error ? 'alert' : 'status'}>
          {chat.notice.text.map((l, i) => (
            <div key={i}>{l}</div>
          ))}
          <button type="button" class="chip-x" aria-label="Dismiss" onClick={() => chat.clearNotice()}>
            ×
          </button>
        </div>
      )}
      {!member ? (
        <div class="composer">
          <button type="button" class="primary" onClick={() => chat.join(chat.current)}>
            Join #{chat.current}
          </button>
        </div>
      ) : canPost ? (
        <Composer />
      ) : (
        <p class="muted small composer">Viewers can read but not post.</p>
      )}
    </div>
  );
}

function ViewTabs() {
  const svc = useServices();
  const chat = svc.chat;
  const rooms = [...chat.rooms.values()].filter((r) => chat.isMember(r.name) || r.name === chat.current);
  rooms.sort((a, b) => (a.name === 'general' ? -1 : b.name === 'general' ? 1 : a.name.localeCompare(b.name)));
  const dms = [...chat.dms.values()];
  return (
    <nav class="view-tabs" aria-label="Rooms and conversations">
      {rooms.map((r) => (
        <button
          type="button"
          key={r.name}
          class={chat.current === r.name ? 'selected' : ''}
          aria-current={chat.current === r.name ? 'true' : undefined}
          onClick={() => chat.select(r.name)}
        >
          #{r.name}
          {r.info && (
            <span class="muted" title={`${r.info.online} online of ${plural(r.info.members, 'member')}`}>
              {' '}
              {r.info.online}/{r.info.members}
            </span>
          )}
          {r.unread > 0 && <span class="unread" aria-label={`${r.unread} unread`}>{r.unread}</span>}
        </button>
      ))}
      {dms.map((d) => (
        <button
          type="button"
          key={'@' + d.user}
          class={chat.current === dmKey(d.user) ? 'selected' : ''}
          aria-current={chat.current === dmKey(d.user) ? 'true' : undefined}
          onClick={() => chat.select(dmKey(d.user))}
        >
          @{d.user}
          {d.unread > 0 && <span class="unread" aria-label={`${d.unread} unread`}>{d.unread}</span>}
        </button>
      ))}
    </nav>
  );
}

/** All rooms with counts; join, create. */
function RoomDirectory() {
  const svc = useServices();
  const chat = svc.chat;
  const [name, setName] = useState('');
  const canCreate = roleAtLeast(svc.me?.role, 'analyst');
  const valid = validRoomName(name.trim());
  const rooms = [...chat.rooms.values()].sort((a, b) => a.name.localeCompare(b.name));
  const ref = useRef<HTMLDetailsElement>(null);
  // A popover: Esc or a click outside closes it (Esc gives focus back to
  // its summary, as a menu would).
  useEffect(() => {
    const close = (focus: boolean) => {
      const d = ref.current;
      if (!d?.open) return;
      d.open = false;
      if (focus) d.querySelector('summary')?.focus();
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && ref.current?.open) {
        e.preventDefault();
        close(true);
      }
    };
    const onDown = (e: PointerEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) close(false);
    };
    document.addEventListener('keydown', onKey);
    document.addEventListener('pointerdown', onDown);
    return () => {
      document.removeEventListener('keydown', onKey);
      document.removeEventListener('pointerdown', onDown);
    };
  }, []);
  return (
    <details class="directory" ref={ref}>
      <summary>Rooms</summary>
      <div class="directory-body">
        <ul>
          {rooms.map((r) => (
            <li key={r.name}>
              <button type="button" class="link-button" onClick={() => chat.select(r.name)}>
                #{r.name}
              </button>
              {r.info && (
                <span class="muted small">
                  {' '}
                  ({plural(r.info.members, 'member')}, {r.info.online} online)
                </span>
              )}
              {!chat.isMember(r.name) && (
                <button type="button" class="small" onClick={() => chat.join(r.name)}>
                  Join
                </button>
              )}
            </li>
          ))}
        </ul>
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault();
            if (!valid) return;
            chat.submit(`/join ${name.trim()}`);
            setName('');
          }}
        >
          <label for="room-name" class="sr-only">
            Room name
          </label>
          <input
            id="room-name"
            placeholder="room-name"
            value={name}
            maxLength={64}
            onInput={(e) => setName(e.currentTarget.value)}
          />
          <button type="submit" disabled={!valid}>
            Join
          </button>
          {canCreate && (
            <button
              type="button"
              disabled={!valid}
              onClick={() => {
                chat.submit(`/create ${name.trim()}`);
                setName('');
              }}
            >
              Create
            </button>
          )}
        </form>
      </div>
    </details>
  );
}

/** Who is in the room, online first; updated live by user_joined / user_left. */
function MemberList({ members, me }: { members: RoomMember[]; me: string }) {
  const online = members.filter((m) => m.online);
  const away = members.filter((m) => !m.online);
  return (
    <details class="members small">
      <summary>Who</summary>
      <ul data-testid="member-list">
        {[...online, ...away].map((m) => (
          <li key={m.user} data-user={m.user} data-online={m.online ? 'true' : 'false'}>
            <span class={`presence-dot${m.online ? ' on' : ''}`} aria-hidden="true" /> {m.user}
            {m.user === me ? ' (you)' : ''} <span class="muted">{m.online ? 'online' : 'offline'}</span>
          </li>
        ))}
      </ul>
    </details>
  );
}

function MessageList({ room }: { room: string }) {
  const svc = useServices();
  const chat = svc.chat;
  const v = chat.rooms.get(room);
  const msgs = chat.visibleMessages();
  const queued = svc.ws.outbox.filter(
    (m): m is Envelope<string, { room: string; content: string }> =>
      m.type === 'chat_message' && (m.data as { room?: string } | undefined)?.room === room,
  );
  const ref = useRef<HTMLOListElement>(null);
  const stick = useRef(true);
  const prevFirst = useRef<number | undefined>(undefined);
  const prevHeight = useRef(0);

  // Keep the view pinned to the bottom while the user is there, and keep
  // the visible messages in place when an older page is prepended.
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const first = msgs[0]?.id;
    if (prevFirst.current !== undefined && first !== undefined && first < prevFirst.current && !stick.current) {
      el.scrollTop += el.scrollHeight - prevHeight.current;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
    prevFirst.current = first;
    prevHeight.current = el.scrollHeight;
  });

  useEffect(() => {
    stick.current = true;
    prevFirst.current = undefined;
  }, [room, chat.alertFilter]);

  const onScroll = () => {
    const el = ref.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (el.scrollTop < 60 && v && !v.complete && !v.loading && chat.alertFilter === null) void chat.loadOlder(room);
  };

  return (
    <ol class="messages" ref={ref} onScroll={onScroll} aria-label={`Messages in ${room}`} tabIndex={0}>
      {v && !v.complete && v.loaded && chat.alertFilter === null && (
        <li class="older">
          <button type="button" class="link-button small" disabled={v.loading} onClick={() => void chat.loadOlder(room)}>
            {v.loading ? 'Loading…' : 'Load older messages'}
          </button>
        </li>
      )}
      {v?.error && <li class="error small">{v.error}</li>}
      {msgs.length === 0 && v?.loaded && queued.length === 0 && (
        <li class="muted small empty">{chat.alertFilter !== null ? 'No discussion of this alert yet.' : 'No messages yet.'}</li>
      )}
      {msgs.map((m) => (
        <MessageItem key={m.id} m={m} mine={m.user === chat.me} />
      ))}
      {queued.map((m) => (
        <li key={String(m.id)} class="msg mine queued">
          <div class="msg-meta">
            <span class="msg-user">{chat.me}</span> <span class="muted small">queued, sent when reconnected</span>
          </div>
          <div class="msg-text">{m.data?.content}</div>
        </li>
      ))}
    </ol>
  );
}

function MessageItem({ m, mine }: { m: ChatMessage; mine: boolean }) {
  return (
    <li class={`msg${mine ? ' mine' : ''}`} data-msg-id={m.id}>
      <div class="msg-meta">
        <span class="msg-user">{m.user}</span> <time dateTime={m.ts}>{formatDateTime(m.ts)}</time>
        {m.alert_id !== undefined && m.alert_id !== null && (
          <a
            class="chip small"
            href={`#alert-${String(m.alert_id)}`}
            onClick={(e) => {
              const el = document.getElementById(`alert-${String(m.alert_id)}`);
              if (!el) return; // not in view: the hash still names it
              e.preventDefault();
              el.scrollIntoView({ block: 'nearest' });
              el.focus();
            }}
          >
            alert #{String(m.alert_id)}
          </a>
        )}
      </div>
      <div class="msg-text">{m.content}</div>
    </li>
  );
}

function DmList({ user }: { user: string }) {
  const svc = useServices();
  const chat = svc.chat;
  const dm = chat.dms.get(user);
  const ref = useRef<HTMLOListElement>(null);
  const queued = svc.ws.outbox.filter(
    (m) => m.type === 'direct_message' && (m.data as { to?: string } | undefined)?.to === user,
  );
  useLayoutEffect(() => {
    const el = ref.current;
    if (el) el.scrollTop = el.scrollHeight;
  });
  const msgs: DirectMessage[] = dm?.messages ?? [];
  return (
    <ol class="messages" ref={ref} aria-label={`Direct messages with ${user}`} tabIndex={0}>
      {msgs.length === 0 && queued.length === 0 && <li class="muted small empty">No messages yet.</li>}
      {msgs.map((m, i) => {
        const from = m.from;
        return (
          <li key={m.id ?? 'i' + i} class={`msg${from === chat.me ? ' mine' : ''}`}>
            <div class="msg-meta">
              <span class="msg-user">{from}</span> {m.ts && <time dateTime={m.ts}>{formatDateTime(m.ts)}</time>}
            </div>
            <div class="msg-text">{m.content}</div>
          </li>
        );
      })}
      {queued.map((m) => (
        <li key={String(m.id)} class="msg mine queued">
          <div class="msg-meta">
            <span class="msg-user">{chat.me}</span> <span class="muted small">queued, sent when reconnected</span>
          </div>
          <div class="msg-text">{(m.data as { content?: string }).content}</div>
        </li>
      ))}
    </ol>
  );
}

function Composer() {
  const svc = useServices();
  const chat = svc.chat;
  const [text, setText] = useState('');
  const label = chat.current.startsWith('@') ? `Message ${chat.current.slice(1)}` : `Message #${chat.current}`;
  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        if (chat.submit(text)) setText('');
      }}
    >
      <label for="chat-input" class="sr-only">
        {label}
      </label>
      <input
        id="chat-input"
        autocomplete="off"
        placeholder={`${label} — /help for commands`}
        value={text}
        maxLength={MAX_CONTENT + 200}
        onInput={(e) => {
          setText(e.currentTarget.value);
          chat.typing(e.currentTarget.value);
        }}
      />
      <button type="submit" class="primary">
        Send
      </button>
    </form>
  );
}
