// Access levels shared by keys, index and everything above them.

/** What a key lets its holder do: read-write, read-only, or store ciphertext only. */
export type Access = 'rw' | 'ro' | 'enc';

export const ACCESS_RANK: Record<Access, number> = { enc: 0, ro: 1, rw: 2 };

/** True when `have` is at least as strong as `want`. */
export function accessAtLeast(have: Access, want: Access): boolean {
  return ACCESS_RANK[have] >= ACCESS_RANK[want];
}
