// How long the tests' waits for an event may take before the test fails. A safety net for a busy 2-core machine
// (several suites, benchmarks and builds at once), never a timed assertion: a passing test never waits this long.
export const WAIT_LIMIT_MS = 30_000;

/** Interval between two looks of a polling wait: short enough to add no real time, long enough to cost no CPU. */
export const POLL_MS = 100;
