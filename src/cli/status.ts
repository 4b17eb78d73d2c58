// `ferry status`: folders, their state and counts, and peers.

import { formatBytes as bytes, printable } from '../util/format.js';
import type { StatusReport } from '../web/daemon-api.js';
import { parseCommand, type Output } from './args.js';
import { ControlClient } from './client.js';

/** Failed items printed per folder (the JSON has up to 100). */
const FAILED_SHOWN = 20;

export const STATUS_USAGE = 'ferry status [--json] [--home DIR]';

export async function status(argv: string[], io: Output): Promise<number> {
  const { values, home } = parseCommand(argv, { json: { type: 'boolean' } }, { min: 0, max: 0 }, STATUS_USAGE);
  const report = await new ControlClient(home).call<StatusReport>('GET', '/status');
  if (values.json) {
    io.out(JSON.stringify(report) + '\n');
    return 0;
  }
  io.out(`device  ${report.device.name}  ${report.device.id}\n`);
  const on = report.listening;
  io.out(`listen  ${report.listen ?? '-'}${on ? `  (tcp ${on.tcp.join(', ') || 'off'}; udp ${on.udp.join(', ') || 'off'})` : ''}\n`);
  if (report.homeDiskFull) io.out(`HOME DISK FULL  ${report.homeDiskFull}\n`);
  if (report.homeRecovered) {
    const r = report.homeRecovered;
    io.out(`HOME RECOVERED  ${r.at}: the index could not be used (${printable(r.detail)}); set aside as ${printable(r.setAside)}, ` +
      `${r.fromPortable ? 'rebuilt from portable.json' : 'no portable.json: join the folders again'}\n`);
  }
  const nat = report.services.nat as { state?: string; reachable?: string; method?: string | null; error?: string | null } | undefined;
  // Every address this device is known at from outside (port mapping, STUN, what peers saw), else why none.
  const seen = report.external ?? [];
  io.out(`external  ${!nat ? 'port mapping off' : nat.method ? `${nat.reachable} (${nat.method})` : nat.reachable ?? 'no port mapping'}\n`);
  io.out(`seen at  ${seen.length ? seen.map((e) => `${e.address} (${e.source})`).join(', ') : 'no external address known yet'}\n`);
  io.out(`port mapping  ${!nat ? 'off' : nat.method ? `${nat.reachable} (${nat.method})` : `${nat.state ?? 'idle'}${nat.error ? ` (${printable(nat.error)})` : ''}`}\n`);
  const pinhole = (nat as { pinhole?: { tcp?: { state?: string; external?: string | null; error?: string | null } } } | undefined)?.pinhole?.tcp;
  if (pinhole) io.out(`ipv6 pinhole  ${pinhole.external ?? `${pinhole.state ?? 'idle'}${pinhole.error ? ` (${printable(pinhole.error)})` : ''}`}\n`);
  const turn = report.services.turn as { servers?: Array<{ server: string; state: string; relayed: string | null; error: string | null }> } | undefined;
  for (const t of turn?.servers ?? []) {
    io.out(`turn ${t.server}  ${t.state}${t.relayed ? `, relayed at ${t.relayed}` : ''}${t.error ? ` (${printable(t.error)})` : ''}\n`);
  }
  for (const known of report.knownPeers) {
    const state = known.connected ? 'connected' : known.lastError ? `(${printable(known.lastError)})` : 'not connected';
    const close = !known.connected && known.lastClose ? ` last close ${printable(known.lastClose)}` : '';
    const retry = !known.connected && known.nextDialInMs !== undefined ? `; next dial in ${Math.ceil(known.nextDialInMs / 1000)} s` : '';
    io.out(`known peer ${known.address} ${state}${close}${retry}\n`);
  }
  // Devices heard of (peer exchange) but not reached directly, and why (hole punching through a third device).
  const introduce = report.services.introduce as { devices?: Array<{ device: string; state: string; reason?: string }> } | undefined;
  for (const d of introduce?.devices ?? []) {
    if (d.state !== 'connected' && d.reason) io.out(`device ${d.device.slice(0, 7)} not reached directly: ${printable(d.reason)}\n`);
  }
  if (report.folders.length === 0) io.out('no folders shared yet (ferry share DIR)\n');
  for (const f of report.folders) {
    const why = f.error ?? f.stalledReason;
    io.out(`\n${f.path}\n  id ${f.id}  access ${f.access}  state ${f.state}${why ? ` (${printable(why)})` : ''}\n`);
    io.out(`  local ${f.localFiles} files, ${bytes(f.localBytes)}; global ${f.globalFiles} files; need ${f.needFiles} files, ${bytes(f.needBytes)}` +
      `${f.inRateBps ? `; receiving ${bytes(f.inRateBps)}/s` : ''}${f.filesInProgress ? `, ${f.filesInProgress} in progress (${bytes(f.partialBytes ?? 0)} here)` : ''}\n`);
    if (f.heldDeletions) {
      const held = f.heldDeletions;
      io.out(`  HELD: ${held.files} deletions by a peer wait for you (${held.reason}): ` +
        `'ferry deletions ${f.id} --apply' deletes them here, '--restore' brings them back everywhere\n`);
    }
    if (f.conflicts) {
      io.out(`  ${f.conflicts} ${f.conflicts === 1 ? 'conflict' : 'conflicts'}: files changed on two devices at once ('ferry conflicts ${f.id}' lists them, 'ferry resolve' settles one)\n`);
    }
    if (f.archive && f.archive.files > 0) {
      io.out(`  archive ${f.archive.files} ${f.archive.files === 1 ? 'version' : 'versions'}, ${bytes(f.archive.bytes)}` +
        `${f.archive.purgeBytes > 0 ? `; the next purge frees ${bytes(f.archive.purgeBytes)}` : ''} ('ferry versions ${f.id} PATH')\n`);
    }
    if (f.excluded?.length) {
      io.out(`  selective sync: ${f.excluded.length} ${f.excluded.length === 1 ? 'subtree' : 'subtrees'} not synced here (${f.excluded.slice(0, 3).map(printable).join(', ')}${f.excluded.length > 3 ? ', …' : ''})` +
        `${f.unselectedFiles ? `; ${f.unselectedFiles} files of peers left there` : ''}${f.localUnselected ? `; ${f.localUnselected} local files there, not sent` : ''} ('ferry select ${f.id}')\n`);
    }
    if (f.localChanges > 0) io.out(`  ${f.localChanges} local changes not synced (read-only folder; 'ferry revert' undoes them)\n`);
    if (f.watcher.limitReached) {
      io.out(`  watcher: ${f.watcher.unwatchedDirs} directories unwatched (raise fs.inotify.max_user_watches); rescanning more often\n`);
    }
    if (f.failedItems > 0) {
      io.out(`  ${f.failedItems} ${f.failedItems === 1 ? 'item' : 'items'} not synced:\n`);
      for (const item of f.failed.slice(0, FAILED_SHOWN)) {
        io.out(`    ${printable(item.path)}: ${printable(item.reason)}${item.source === 'local' || item.source === 'unselected' ? '' : ` (from ${item.source.slice(0, 7)})`}\n`);
      }
      if (f.failedItems > FAILED_SHOWN) io.out(`    … and ${f.failedItems - FAILED_SHOWN} more (ferry status --json)\n`);
    }
    for (const p of f.peers) {
      const rates = p.connected
        ? ` in ${bytes(p.inRateBps ?? 0)}/s out ${bytes(p.outRateBps ?? 0)}/s`
        : ` disconnected${p.lastClose ? ` (last close ${printable(p.lastClose)})` : ''}`;
      const need = p.needFiles ?? 0;
      const done = p.completion === undefined ? 'completion being worked out'
        : need > 0 ? `${p.completion} % complete, needs ${need} ${need === 1 ? 'file' : 'files'} (${bytes(p.needBytes ?? 0)})` : `${p.completion} % complete`;
      io.out(`  peer ${printable(p.name ?? '')} ${p.device} ${p.address} via ${p.source}${rates}; ${done}\n`);
    }
  }
  return 0;
}
