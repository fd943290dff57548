// A binary min-heap of simulator events ordered by (time, insertion order): ties resolve in the
// order events were scheduled, so a run depends on nothing but its seed.

export interface Timed {
  atMs: number;
  order: number;
}

export class EventHeap<T extends Timed> {
  private readonly items: T[] = [];

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    if (this.items.length >= this.capacity) throw new Error(`event queue over ${this.capacity} entries`);
    const items = this.items;
    items.push(item);
    let index = items.length - 1;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = items[parentIndex] as T;
      if (!before(item, parent)) break;
      items[index] = parent;
      index = parentIndex;
    }
    items[index] = item;
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let index = 0;
    const length = items.length;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= length) break;
      const right = left + 1;
      let child = left;
      if (right < length && before(items[right] as T, items[left] as T)) child = right;
      const childItem = items[child] as T;
      if (!before(childItem, last)) break;
      items[index] = childItem;
      index = child;
    }
    items[index] = last;
    return top;
  }

  peek(): T | undefined {
    return this.items[0];
  }
}

function before(a: Timed, b: Timed): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.order < b.order);
}
