// The admin page's static files (built from web/ by esbuild): read once at start from a single-executable
// bundle's assets (`web/<name>`) or from the build directory beside this module, then served from memory.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type Koa from 'koa';

/** The files web/build.mjs writes; a single-executable bundle embeds each as the asset `web/<name>`. */
export const ASSET_NAMES = ['index.html', 'app.js', 'app.css', 'favicon.svg'] as const;

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};

/** Where `make build` puts the page: build/web/, two levels above build/src/web/. */
export function defaultAssetDir(): string | null {
  try {
    return fileURLToPath(new URL('../../web/', import.meta.url));
  } catch {
    return null; // bundled as CommonJS: no import.meta.url
  }
}

async function readSeaAsset(name: string): Promise<Buffer | null> {
  try {
    const require = createRequire(typeof __filename === 'string' ? __filename : import.meta.url);
    const sea = require('node:sea') as { isSea(): boolean; getAsset(key: string): ArrayBuffer };
    return sea.isSea() ? Buffer.from(sea.getAsset(`web/${name}`)) : null;
  } catch {
    return null;
  }
}

export class StaticAssets {
  private constructor(private readonly files: Map<string, Buffer>, readonly missing: string | null) {}

  /** Loads every asset; if any is missing the page answers 503 with how to build it. */
  static async load(dir: string | null = defaultAssetDir()): Promise<StaticAssets> {
    const files = new Map<string, Buffer>();
    for (const name of ASSET_NAMES) {
      const content = (await readSeaAsset(name)) ?? (dir ? await readFile(join(dir, name)).catch(() => null) : null);
      if (!content) return new StaticAssets(new Map(), `${name} not found in ${dir ?? 'the bundle'}`);
      files.set(name, content);
    }
    return new StaticAssets(files, null);
  }

  serve(ctx: Koa.Context): void {
    if (this.missing) {
      ctx.status = 503;
      ctx.type = 'text/plain';
      ctx.body = `The admin page is not built (${this.missing}): run 'make build'.\n`;
      return;
    }
    const name = ctx.path === '/' ? 'index.html' : ctx.path.slice(1);
    const content = this.files.get(name);
    if (!content) {
      ctx.status = 404;
      ctx.type = 'text/plain';
      ctx.body = 'not found\n';
      return;
    }
    ctx.set('Content-Type', TYPES[name.split('.').pop()!] ?? 'application/octet-stream');
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = content;
  }
}
