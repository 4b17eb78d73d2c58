// The rule that keeps one connection per device pair; both ends compute it and reach the same answer.

export type Direction = 'in' | 'out';

/** What the rule needs to know about one established connection to a device. */
export interface LinkFacts {
  /** 'out' when this device dialled (was the TLS client). */
  direction: Direction;
  /** Increases with each connection this device starts or accepts: higher is newer. */
  order: number;
  /** The link runs through a relay (a direct one is always preferred to it). */
  relayed?: boolean;
}

/**
 * Whether `candidate` replaces `existing`, two established connections to the same device.
 * A direct link replaces a relayed one (a relayed link keeps trying to go direct).
 * Same direction (the dialler reconnected before this side noticed the old link died): the
 * newer wins, as the dialler has only the new one. Different directions (both sides dialled at
 * once): the one whose dialling side has the smaller device ID wins; the peer sees the same two
 * links with directions swapped and so keeps the same one.
 */
export function prefersCandidate(localDeviceId: string, remoteDeviceId: string, existing: LinkFacts, candidate: LinkFacts): boolean {
  // Both ends know which link is relayed: the direct one wins, whoever dialled it.
  if ((existing.relayed ?? false) !== (candidate.relayed ?? false)) return !candidate.relayed;
  if (existing.direction === candidate.direction) return candidate.order > existing.order;
  const dialler = (link: LinkFacts): string => (link.direction === 'out' ? localDeviceId : remoteDeviceId);
  return dialler(candidate) < dialler(existing);
}
