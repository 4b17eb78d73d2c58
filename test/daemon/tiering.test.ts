import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { TURBOFAN_INTERRUPT_BUDGET, applyTieringFlags, tiersByInterruptBudget } from '../../src/daemon/runtime.js';

const run = promisify(execFile);
const RUNTIME = new URL('../../src/daemon/runtime.js', import.meta.url).href;

/**
 * A child node with `--trace-opt` runs 200 lukewarm functions (each 40 calls of a 200-step loop, as a
 * daemon's per-file code runs in one sync) after applying the daemon's tiering flag or not; returns
 * how many functions V8 queued for TurboFan (a count, not a time).
 */
async function turbofanCompiles(apply: boolean, nodeFlags: string[] = []): Promise<number> {
  const script = `
    const { applyTieringFlags } = await import(${JSON.stringify(RUNTIME)});
    if (${apply}) applyTieringFlags();
    const fns = Array.from({ length: 200 }, (_, i) => new Function('x', 'let s = ' + i + '; for (let j = 0; j < x; j++) s = (s * 31 + j) | 0; return s;'));
    let t = 0;
    for (let r = 0; r < 40; r++) for (const f of fns) t += f(200);
    console.log('sum', t);
  `;
  const { stdout } = await run(process.execPath, ['--trace-opt', ...nodeFlags, '--input-type=module', '-e', script], { maxBuffer: 16 * 1024 * 1024 });
  assert.match(stdout, /sum -?\d+/);
  return stdout.split('\n').filter((line) => /^\[compiling method .*target TURBOFAN/.test(line)).length;
}

describe('daemon tiering flag', () => {
  it('sets the interrupt budget unless node was started with one', () => {
    const flags: string[] = [];
    assert.equal(applyTieringFlags([], (f) => flags.push(f), '11.3.244.8-node.33'), true);
    assert.deepEqual(flags, [`--interrupt-budget=${TURBOFAN_INTERRUPT_BUDGET}`]);
    assert.equal(applyTieringFlags(['--max-semi-space-size=2', '--interrupt-budget=100000'], (f) => flags.push(f), '11.3.244.8-node.33'), false);
    assert.equal(applyTieringFlags(['--interrupt_budget=100000'], (f) => flags.push(f), '11.3.244.8-node.33'), false);
    assert.equal(flags.length, 1, 'an explicit budget on the command line wins');
    // A different flag that merely starts alike is not the budget.
    assert.equal(applyTieringFlags(['--interrupt-budget-for-feedback-allocation=940'], (f) => flags.push(f), '11.3.244.8-node.33'), true);
  });

  it('leaves a V8 with Maglev alone (Node 22 and later have no --interrupt-budget)', () => {
    const flags: string[] = [];
    assert.equal(tiersByInterruptBudget('11.8.172.17-node.19'), true);
    assert.equal(tiersByInterruptBudget('12.4.254.21-node.33'), false);
    assert.equal(applyTieringFlags([], (f) => flags.push(f), '13.6.233.10-node.24'), false);
    assert.deepEqual(flags, []);
  });

  it('keeps lukewarm functions out of TurboFan in a real node process', { skip: tiersByInterruptBudget() ? false : `V8 ${process.versions.v8} tiers through Maglev: the flag is not set` }, async () => {
    const without = await turbofanCompiles(false);
    const withFlag = await turbofanCompiles(true);
    assert.ok(without >= 50, `V8's default budget optimizes most of the 200 functions (${without})`);
    assert.ok(withFlag <= without / 4, `the daemon's budget optimizes far fewer (${withFlag} against ${without})`);
    // The command line's budget wins over the daemon's.
    assert.ok((await turbofanCompiles(true, ['--interrupt-budget=67584'])) >= 50);
  });
});
