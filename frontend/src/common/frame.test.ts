import { describe, expect, it } from 'vitest';
import { FrameBatcher, KeyedObservable, Observable } from './frame';

/** A manual animation-frame source: the test decides when a frame happens. */
function manualFrames() {
  const queue: (() => void)[] = [];
  return {
    raf: (cb: () => void) => {
      queue.push(cb);
    },
    requested: () => queue.length,
    frame: () => {
      const cbs = queue.splice(0);
      for (const cb of cbs) cb();
    },
  };
}

describe('FrameBatcher', () => {
  it('runs a function scheduled many times once per frame', () => {
    const f = manualFrames();
    const b = new FrameBatcher(f.raf);
    let n = 0;
    const render = () => n++;
    for (let i = 0; i < 500; i++) b.schedule(render);
    expect(f.requested()).toBe(1);
    expect(n).toBe(0);
    f.frame();
    expect(n).toBe(1);
    f.frame();
    expect(n).toBe(1);
  });

  it('runs work scheduled during a frame on the next frame', () => {
    const f = manualFrames();
    const b = new FrameBatcher(f.raf);
    const log: string[] = [];
    const second = () => log.push('second');
    b.schedule(() => {
      log.push('first');
      b.schedule(second);
    });
    f.frame();
    expect(log).toEqual(['first']);
    f.frame();
    expect(log).toEqual(['first', 'second']);
  });

  it('keeps going when one callback throws', () => {
    const f = manualFrames();
    const b = new FrameBatcher(f.raf);
    let ran = false;
    const orig = console.error;
    console.error = () => {};
    try {
      b.schedule(() => {
        throw new Error('boom');
      });
      b.schedule(() => {
        ran = true;
      });
      f.frame();
    } finally {
      console.error = orig;
    }
    expect(ran).toBe(true);
  });
});

describe('Observable', () => {
  it('notifies listeners once per frame however many changes', () => {
    const f = manualFrames();
    const obs = new Observable(new FrameBatcher(f.raf));
    let calls = 0;
    obs.subscribe(() => calls++);
    for (let i = 0; i < 1000; i++) obs.changed();
    expect(obs.version).toBe(1000);
    f.frame();
    expect(calls).toBe(1);
    obs.changed();
    f.frame();
    expect(calls).toBe(2);
  });

  it('stops notifying after unsubscribe', () => {
    const f = manualFrames();
    const obs = new Observable(new FrameBatcher(f.raf));
    let calls = 0;
    const off = obs.subscribe(() => calls++);
    off();
    obs.changed();
    f.frame();
    expect(calls).toBe(0);
  });
});

describe('KeyedObservable', () => {
  it('notifies only the keys that changed, once each per frame', () => {
    const f = manualFrames();
    const batcher = new FrameBatcher(f.raf);
    const obs = new KeyedObservable<string>(batcher);
    const calls = new Map<string, number>();
    for (let i = 0; i < 500; i++) {
      const k = 's-' + i;
      obs.subscribe(k, () => calls.set(k, (calls.get(k) ?? 0) + 1));
    }
    // 500 sensors at 1 Hz: a frame sees a few dozen readings, some twice.
    for (let i = 0; i < 40; i++) obs.changed('s-' + (i % 20));
    expect(f.requested()).toBe(1);
    f.frame();
    expect(calls.size).toBe(20);
    expect([...calls.values()].every((n) => n === 1)).toBe(true);
  });

  it('shares one frame with other observables on the same batcher', () => {
    const f = manualFrames();
    const batcher = new FrameBatcher(f.raf);
    const a = new Observable(batcher);
    const k = new KeyedObservable<string>(batcher);
    const log: string[] = [];
    a.subscribe(() => log.push('a'));
    k.subscribe('x', () => log.push('x'));
    a.changed();
    k.changed('x');
    k.changed('x');
    expect(f.requested()).toBe(1);
    f.frame();
    expect(log.sort()).toEqual(['a', 'x']);
  });
});
