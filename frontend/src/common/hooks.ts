// Preact hooks that connect components to the frame-coalesced stores.

import { useEffect, useReducer, useRef } from 'preact/hooks';
import type { Emitter } from './emitter';
import { type FrameBatcher, type KeyedObservable, Observable } from './frame';

function useForceUpdate(): () => void {
  const [, force] = useReducer((n: number) => n + 1, 0);
  return force as () => void;
}

/**
 * Re-renders the component (at most once per frame) when obs changes.
 * While enabled is false (an off-screen tile) it does not listen; turning
 * it on renders once to catch up with what was missed.
 */
export function useObservable(obs: Observable, enabled = true): number {
  const force = useForceUpdate();
  const first = useRef(true);
  useEffect(() => {
    if (!enabled) return;
    if (!first.current) force();
    first.current = false;
    return obs.subscribe(force);
  }, [obs, enabled]);
  return obs.version;
}

/** Re-renders the component when key of obs changes; like useObservable for enabled. */
export function useKeyed<K>(obs: KeyedObservable<K>, key: K, enabled = true): void {
  const force = useForceUpdate();
  const first = useRef(true);
  useEffect(() => {
    if (!enabled) return;
    if (!first.current) force();
    first.current = false;
    return obs.subscribe(key, force);
  }, [obs, key, enabled]);
}

/** Re-renders on every emission of emitter (use for rare events only). */
export function useEmitter<T>(emitter: Emitter<T>): void {
  const force = useForceUpdate();
  useEffect(() => emitter.on(() => force()), [emitter]);
}

/**
 * Clock ticks once a second so ages ("4 s ago") and staleness move even
 * when no data arrives. Listeners run on the frame after the tick.
 */
export class Clock extends Observable {
  now = Date.now();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(batcher: FrameBatcher) {
    super(batcher);
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => {
      this.now = Date.now();
      this.changed();
    }, 1000);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
