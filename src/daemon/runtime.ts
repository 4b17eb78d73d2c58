// How the daemon's Node process should be started: V8 flags that keep memory low on small NAS boxes.

/**
 * V8's young generation grows to 3 × 16 MiB under allocation bursts (a scan of many small files);
 * 1 MiB semi-spaces keep the daemon's heap near its live size at no measurable cost in scan speed
 * (bench/). V8 reads this only at start-up, so launchers pass it: bin/ferry, `make run`, the
 * packages' service scripts and the tests' daemons.
 */
export const DAEMON_V8_FLAGS = ['--max-semi-space-size=1'] as const;
