// The listener on the web address until the full admin page lands: a read-only status page and /api/status.

import Koa from 'koa';
import type { DaemonApi, StatusReport } from './daemon-api.js';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function renderStatusPage(status: StatusReport): string {
  const rows = status.folders
    .map(
      (f) =>
        `<tr><td>${escapeHtml(f.path)}</td><td>${f.access}</td><td>${f.state}</td>` +
        `<td>${f.localFiles}</td><td>${formatBytes(f.localBytes)}</td><td>${f.needFiles}</td></tr>`,
    )
    .join('');
  return `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Ferry</title><style>body{font:15px system-ui;margin:1.5em}td,th{padding:.3em .8em;text-align:left}</style></head>
<body><h1>Ferry</h1><p>Device <code>${escapeHtml(status.device.name)}</code> · <code>${escapeHtml(status.device.id)}</code></p>
<table><thead><tr><th>Folder</th><th>Access</th><th>State</th><th>Files</th><th>Size</th><th>Needed</th></tr></thead>
<tbody>${rows || '<tr><td colspan="6">No folders yet: <code>ferry share DIR</code></td></tr>'}</tbody></table></body></html>`;
}

/** Read-only: nothing on this listener changes state, so it needs no login yet. */
export function createStatusApp(daemon: DaemonApi): Koa {
  const app = new Koa();
  app.use((ctx) => {
    if (ctx.method !== 'GET') {
      ctx.status = 405;
      return;
    }
    if (ctx.path === '/api/status') ctx.body = daemon.status();
    else if (ctx.path === '/') {
      ctx.type = 'html';
      ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
      ctx.body = renderStatusPage(daemon.status());
    } else ctx.status = 404;
  });
  return app;
}
