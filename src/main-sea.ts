// Entry point of the bundle (packaging/build): the single executables' and, run by Debian's node, armv7's; the CLI as in
// main.ts, without top-level await (the bundle is CommonJS).

import Module from 'node:module';
import { quietOnClosedOutput } from './cli/closed-output.js';
import { main } from './cli/index.js';
import { applyDaemonEnv } from './daemon/runtime.js';

/** Assets the build put inside the bundle when it runs without SEA (armv7, on Debian's node): name → base64. */
declare const FERRY_EMBEDDED_ASSETS: Record<string, string> | undefined;

type SeaModule = { isSea(): boolean; getAsset(key: string): ArrayBuffer };
type Loader = (request: string, ...rest: unknown[]) => unknown;

/**
 * Gives such a bundle a `node:sea` with `getAsset` over the embedded copies, so the rest of the code reads assets one
 * way. Outside a SEA, Node's own `node:sea` holds no assets, so the module loader answers that name itself, for the
 * bundle's require and createRequire's alike.
 */
function polyfillSeaAssets(): void {
  if (typeof FERRY_EMBEDDED_ASSETS !== 'object' || !FERRY_EMBEDDED_ASSETS) return;
  const embedded = FERRY_EMBEDDED_ASSETS;
  const getAsset = (key: string): ArrayBuffer => {
    const text = embedded[key];
    if (text === undefined) throw new Error(`no asset ${key} in this executable`);
    const bytes = Buffer.from(text, 'base64');
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  };
  const sea: SeaModule = { isSea: () => true, getAsset };
  const loader = Module as unknown as { _load: Loader };
  const load = loader._load;
  loader._load = function (this: unknown, request: string, ...rest: unknown[]): unknown {
    return request === 'node:sea' || request === 'sea' ? sea : load.call(this, request, ...rest);
  };
}

polyfillSeaAssets();
// Before the first asynchronous call starts libuv's thread pool (this CommonJS bundle makes none before).
applyDaemonEnv();
quietOnClosedOutput();
main(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`ferry: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
