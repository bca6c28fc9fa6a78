// A minimal synchronous event emitter: listeners run in subscription order;
// one that throws is reported and does not stop the others.

export class Emitter<T> {
  private listeners = new Set<(value: T) => void>();

  on(fn: (value: T) => void): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  emit(value: T): void {
    for (const fn of [...this.listeners]) {
      try {
        fn(value);
      } catch (err) {
        console.error('listener failed', err);
      }
    }
  }

  get size(): number {
    return this.listeners.size;
  }
}
