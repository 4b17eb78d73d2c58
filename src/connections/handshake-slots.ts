// Who may sit in a handshake: a bounded table of pending sockets, per source address and in all, with a deadline; when full, the oldest goes.

/** @default of HandshakeSlotsOptions.maxTotal */
export const MAX_PENDING_HANDSHAKES = 32;
/** @default of HandshakeSlotsOptions.maxPerSource */
export const MAX_PENDING_PER_SOURCE = 8;
/** @default of HandshakeSlotsOptions.deadlineMs: TCP accept to the end of the Ferry handshake. */
export const PENDING_HANDSHAKE_DEADLINE_MS = 10_000;

export interface HandshakeSlotsOptions<T> {
  maxTotal?: number;
  maxPerSource?: number;
  deadlineMs?: number;
  /** Whether an item has sent anything yet (a socket's bytesRead): silent ones are evicted first. */
  hasSpoken?: (item: T) => boolean;
  /** A pending item leaves the table without finishing: evicted for a newer one, or past its deadline. */
  onDrop: (item: T, why: 'evicted' | 'deadline', source: string) => void;
}

interface Slot {
  source: string;
  seq: number;
  /** Past TLS: a peer that got this far is evicted after those that did not. */
  secured: boolean;
  timer: NodeJS.Timeout;
}

/**
 * Pending handshakes by item (a socket). admit() always makes room: an attacker holding idle
 * sockets cannot keep a new peer out, only push out its own (or, when the whole table is full,
 * the oldest not yet past TLS), and every slot ends at its deadline.
 */
export class HandshakeSlots<T> {
  private readonly maxTotal: number;
  private readonly maxPerSource: number;
  private readonly deadlineMs: number;
  private readonly slots = new Map<T, Slot>();
  private readonly perSource = new Map<string, number>();
  private seq = 0;

  constructor(private readonly options: HandshakeSlotsOptions<T>) {
    this.maxTotal = Math.max(1, options.maxTotal ?? MAX_PENDING_HANDSHAKES);
    this.maxPerSource = Math.max(1, Math.min(options.maxPerSource ?? MAX_PENDING_PER_SOURCE, this.maxTotal));
    this.deadlineMs = options.deadlineMs ?? PENDING_HANDSHAKE_DEADLINE_MS;
  }

  get size(): number {
    return this.slots.size;
  }

  has(item: T): boolean {
    return this.slots.has(item);
  }

  /** Takes a slot for `item` from `source` (an IP address), evicting the oldest pending item when full. */
  admit(item: T, source: string): void {
    if ((this.perSource.get(source) ?? 0) >= this.maxPerSource) this.evictOldest(source);
    else if (this.slots.size >= this.maxTotal) this.evictOldest();
    const timer = setTimeout(() => this.drop(item, 'deadline'), this.deadlineMs);
    timer.unref();
    this.slots.set(item, { source, seq: this.seq++, secured: false, timer });
    this.perSource.set(source, (this.perSource.get(source) ?? 0) + 1);
  }

  /** The item finished TLS. */
  secured(item: T): void {
    const slot = this.slots.get(item);
    if (slot) slot.secured = true;
  }

  /** The item finished its handshake or closed: frees its slot. */
  release(item: T): void {
    const slot = this.slots.get(item);
    if (!slot) return;
    clearTimeout(slot.timer);
    this.slots.delete(item);
    const left = (this.perSource.get(slot.source) ?? 1) - 1;
    if (left > 0) this.perSource.set(slot.source, left);
    else this.perSource.delete(slot.source);
  }

  /** Frees every slot without dropping anyone (the owner closes the items). */
  clear(): T[] {
    const items = [...this.slots.keys()];
    for (const item of items) this.release(item);
    return items;
  }

  private drop(item: T, why: 'evicted' | 'deadline'): void {
    const slot = this.slots.get(item);
    if (!slot) return;
    this.release(item);
    this.options.onDrop(item, why, slot.source);
  }

  /**
   * The pending item (of `source`, if given) that got least far — silent, then mid-TLS, then past
   * TLS — and of those the oldest: idle sockets go before a peer that is talking.
   */
  private evictOldest(source?: string): void {
    let victim: { item: T; rank: number; seq: number } | undefined;
    for (const [item, slot] of this.slots) {
      if (source !== undefined && slot.source !== source) continue;
      const rank = slot.secured ? 2 : this.options.hasSpoken?.(item) ? 1 : 0;
      if (!victim || rank < victim.rank || (rank === victim.rank && slot.seq < victim.seq)) victim = { item, rank, seq: slot.seq };
    }
    if (victim) this.drop(victim.item, 'evicted');
  }
}
