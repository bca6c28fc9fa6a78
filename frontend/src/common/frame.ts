// Render coalescing. Readings arrive hundreds of times per second; stores
// change immediately but tell their listeners at most once per animation
// frame, so the views render at most once per frame whatever the rate.

export type RequestFrame = (cb: () => void) => unknown;

function defaultRequestFrame(): RequestFrame {
  if (typeof requestAnimationFrame === 'function') {
    return (cb) => requestAnimationFrame(() => cb());
  }
  return (cb) => setTimeout(cb, 16);
}

/**
 * FrameBatcher runs scheduled callbacks once, on the next animation frame.
 * Scheduling the same function several times before that frame runs it
 * once. Callbacks scheduled while a frame is being flushed run on the next
 * frame, so a listener that changes a store cannot loop within one frame.
 */
export class FrameBatcher {
  private pending = new Set<() => void>();
  private scheduled = false;
  private readonly requestFrame: RequestFrame;

  constructor(requestFrame: RequestFrame = defaultRequestFrame()) {
    this.requestFrame = requestFrame;
  }

  schedule(fn: () => void): void {
    this.pending.add(fn);
    if (!this.scheduled) {
      this.scheduled = true;
      this.requestFrame(() => this.flush());
    }
  }

  /** Runs everything scheduled so far. Exposed for tests. */
  flush(): void {
    this.scheduled = false;
    const fns = [...this.pending];
    this.pending.clear();
    for (const fn of fns) {
      try {
        fn();
      } catch (err) {
        // One broken view must not stop the others from rendering.
        console.error('render listener failed', err);
      }
    }
  }
}

/**
 * Observable is a change signal: changed() marks it dirty and its listeners
 * run once on the next frame, however many times changed() was called.
 */
export class Observable {
  private listeners = new Set<() => void>();
  /** Incremented on every change: lets hooks and memos know what they saw. */
  version = 0;
  private readonly batcher: FrameBatcher;
  private readonly emitBound = () => this.emit();

  constructor(batcher: FrameBatcher) {
    this.batcher = batcher;
  }

  changed(): void {
    this.version++;
    this.batcher.schedule(this.emitBound);
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  private emit(): void {
    for (const fn of [...this.listeners]) fn();
  }
}

/**
 * KeyedObservable is like Observable but per key: a tile listens to its own
 * sensor only, and on each frame only the listeners of keys that changed
 * since the previous frame run.
 */
export class KeyedObservable<K> {
  private listeners = new Map<K, Set<() => void>>();
  private dirty = new Set<K>();
  private readonly batcher: FrameBatcher;
  private readonly emitBound = () => this.emit();

  constructor(batcher: FrameBatcher) {
    this.batcher = batcher;
  }

  changed(key: K): void {
    this.dirty.add(key);
    this.batcher.schedule(this.emitBound);
  }

  subscribe(key: K, fn: () => void): () => void {
    let set = this.listeners.get(key);
    if (!set) {
      set = new Set();
      this.listeners.set(key, set);
    }
    set.add(fn);
    return () => {
      const s = this.listeners.get(key);
      if (!s) return;
      s.delete(fn);
      if (s.size === 0) this.listeners.delete(key);
    };
  }

  private emit(): void {
    const keys = [...this.dirty];
    this.dirty.clear();
    for (const k of keys) {
      const set = this.listeners.get(k);
      if (set) for (const fn of [...set]) fn();
    }
  }
}
