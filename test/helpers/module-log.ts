// `node --import` this file (a test daemon's node flag) with FERRY_TEST_MODULE_LOG=FILE: every ES module the process
// loads is appended to FILE as it loads (module-log-hooks.ts), and at exit Node's built-in modules and the CommonJS
// ones, one per line: `esm URL`, `builtin NAME`, `cjs PATH`. Tests of what a daemon holds use it.

import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const out = process.env.FERRY_TEST_MODULE_LOG;
if (out) {
  register('./module-log-hooks.js', import.meta.url);
  const require = createRequire(import.meta.url);
  process.on('exit', () => {
    const loaded = (process as unknown as { moduleLoadList: string[] }).moduleLoadList;
    const builtins = loaded.filter((m) => m.startsWith('NativeModule ')).map((m) => `builtin ${m.slice('NativeModule '.length)}`);
    const cjs = Object.keys(require.cache).map((path) => `cjs ${path}`);
    appendFileSync(out, [...builtins, ...cjs].join('\n') + '\n');
  });
}
