// How long the tests' waits for an event may take before the test fails. A safety net for a busy 2-core machine
// (several suites, benchmarks and builds at once), never a timed assertion: a passing test never waits this long.
export const WAIT_LIMIT_MS = 30_000;

/** Interval between two looks of a polling wait: short enough to add no real time, long enough to cost no CPU. */
export const POLL_MS = 100;
/**
 * How long a daemon may take to start answering its control socket. Start-up loads the whole program, opens the
 * index and makes keys: on a 2-core machine running three daemons at load 30 that took over 30 s (CI, netlab trios).
 */
export const DAEMON_START_LIMIT_MS = 120_000;
