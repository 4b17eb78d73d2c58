// Module hooks of module-log.ts: each ES module loaded, as it loads.

import { appendFileSync } from 'node:fs';

type Next = (url: string, context: unknown) => Promise<unknown>;

export async function load(url: string, context: unknown, next: Next): Promise<unknown> {
  const result = await next(url, context);
  const out = process.env.FERRY_TEST_MODULE_LOG;
  if (out) appendFileSync(out, `esm ${url}\n`);
  return result;
}
