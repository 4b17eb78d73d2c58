// What one announce says about us, shared by the HTTP and UDP tracker clients.

export type AnnounceEvent = 'started' | 'stopped' | 'completed' | 'none';

export interface AnnounceParams {
  /** The folder ID: 20 bytes. */
  infoHash: Buffer;
  /** 20 bytes, random per daemon run. */
  peerId: Buffer;
  /** The sync port peers should dial. */
  port: number;
  event: AnnounceEvent;
  numWant: number;
  /** Random per daemon run: lets a tracker recognise us across address changes. */
  key: number;
  /**
   * This device's global IPv6 address (BEP 7 `ipv6=`, HTTP only), so a tracker reached over IPv4
   * can also hand out our IPv6 address (with the announced port).
   */
  ipv6?: string;
}

/**
 * Announced as "bytes left". A sync folder is never complete for good, and some trackers give
 * complete peers no other complete peers, so every Ferry device says it still wants one byte.
 */
export const ANNOUNCED_LEFT = 1;
