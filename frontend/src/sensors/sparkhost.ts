// What the sparklines of one grid share: one IntersectionObserver for all
// tiles, so off-screen sparklines are not redrawn (with 500 tiles most are
// off-screen most of the time), and the cache of stroke colours.

export class SparkHost {
  /** Stroke colour per tone and colour scheme, read once from the stylesheet. */
  readonly colours = new Map<string, string>();
  private readonly callbacks = new Map<Element, (visible: boolean) => void>();
  private readonly observer: IntersectionObserver | null;

  constructor() {
    this.observer =
      typeof IntersectionObserver === 'function'
        ? new IntersectionObserver(
            (entries) => {
              for (const e of entries) this.callbacks.get(e.target)?.(e.isIntersecting);
            },
            { rootMargin: '200px' },
          )
        : null;
  }

  /** Calls fn with the element's visibility now and on every change. Returns the unobserve function. */
  observe(el: Element, fn: (visible: boolean) => void): () => void {
    if (!this.observer) {
      fn(true);
      return () => {};
    }
    this.callbacks.set(el, fn);
    this.observer.observe(el);
    return () => {
      this.callbacks.delete(el);
      this.observer?.unobserve(el);
    };
  }

  disconnect(): void {
    this.observer?.disconnect();
    this.callbacks.clear();
    this.colours.clear();
  }
}
