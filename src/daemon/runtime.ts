// How the daemon's Node process should be started: V8 flags that keep memory low on small NAS boxes.

import { setFlagsFromString } from 'node:v8';

/**
 * V8's young generation grows to 3 × 16 MiB under allocation bursts (a scan of many small files);
 * 4 MiB semi-spaces keep the daemon's heap near its live size. 1 MiB kept it smaller still but
 * meant a ~1 ms scavenge per MiB allocated: syncing 5,000 small files cost 0.66 s of collection on
 * the receiver against 0.36 s with 4 MiB (and 0.25 s with V8's default 16). V8 reads this only at
 * start-up, so launchers pass it: bin/ferry, `make run`, the packages' service scripts and the
 * tests' daemons.
 */
export const DAEMON_V8_FLAGS = ['--max-semi-space-size=4'] as const;

/**
 * V8 lets the old generation grow to up to 4× what survived the last full collection while
 * collections are cheap, and a stream of records is cheap to collect: the daemons of a
 * 20,000-file sync peaked at 150 and 133 MiB of anonymous memory. Twice the survivors kept them to
 * about 100 and 80 MiB at no measured cost in time (bench/). This flag is not allowed in
 * NODE_OPTIONS, which the service scripts use, and V8 reads it at each collection: the daemon sets
 * it itself when it starts.
 */
const DAEMON_HEAP_GROWING_PERCENT = 100;

export function tuneDaemonHeap(): void {
  setFlagsFromString(`--heap-growing-percent=${DAEMON_HEAP_GROWING_PERCENT}`);
}
