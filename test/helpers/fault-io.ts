// A fault plan for tests: a FileIo (src/util/file-io.ts) that fails chosen calls with an errno (ENOSPC,
// EIO, EACCES, EBUSY, EPERM), or makes a write short, on the Nth matching call or on every matching call,
// until cleared.

import { readlinkSync } from 'node:fs';
import { NODE_FILE_IO, NODE_FILE_READS, type FileIo, type FileReads } from '../../src/util/file-io.js';

/** `chmod` covers fchmod, fchmodSync and chmod; `utimes` covers futimesSync and lutimes. */
export type FaultOp =
  | 'open' | 'write' | 'fsync' | 'fdatasync' | 'truncate' | 'rename' | 'link' | 'mkdir' | 'unlink' | 'rmdir' | 'symlink' | 'chmod' | 'utimes'
  // FileReads (the scanner's walk and deletion pass)
  | 'opendir' | 'lstat' | 'readlink';
/** An errno to throw, or `short`: a write that really writes half its bytes and says so. */
/** ENOENT: the entry seems to vanish (between a directory's listing and its lstat, say). */
export type FaultKind = 'ENOSPC' | 'EIO' | 'EPERM' | 'EACCES' | 'EBUSY' | 'ENOENT' | 'short';

export interface FaultRule {
  op: FaultOp;
  kind: FaultKind;
  /** Which call's paths to match (for calls on a descriptor: the path it was opened by; for rename/link: either end). */
  path?: RegExp;
  /** Only the Nth matching call (1-based, counted from inject()) fails; without it, every matching call does. */
  nth?: number;
  /** opendir only: the listing yields this many names, then fails (a directory unreadable part way). */
  afterEntries?: number;
}

export interface InjectedFault {
  op: FaultOp;
  kind: FaultKind;
  paths: string[];
}

/**
 * The path a call names as the folder sees it: the daemon reaches entries through directories it
 * holds open (`/proc/self/fd/N/name`), which is resolved while the descriptor is still open.
 */
function realPath(path: string): string {
  const through = /^\/proc\/self\/fd\/(\d+)(?:\/(.*))?$/.exec(path);
  if (!through) return path;
  try {
    const dir = readlinkSync(`/proc/self/fd/${through[1]}`);
    return through[2] === undefined ? dir : `${dir}/${through[2]}`;
  } catch {
    return path;
  }
}

type Errno = Exclude<FaultKind, 'short'>;

const ERRNO: Record<Errno, number> = { ENOSPC: -28, EIO: -5, EPERM: -1, EACCES: -13, EBUSY: -16, ENOENT: -2 };
const MESSAGE: Record<Errno, string> = {
  ENOSPC: 'no space left on device',
  EIO: 'i/o error',
  EPERM: 'operation not permitted',
  EACCES: 'permission denied',
  EBUSY: 'resource busy or locked',
  ENOENT: 'no such file or directory',
};

export function errnoError(code: Errno, syscall: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${MESSAGE[code]} (injected), ${syscall} '${path}'`), { code, errno: ERRNO[code], syscall, path });
}

/** Wraps a FileIo and FileReads (node:fs by default); `io` and `reads` are what the code under test is given. */
export class FaultPlan {
  readonly io: FileIo;
  readonly reads: FileReads;
  /** Every fault injected so far, in order. */
  readonly injected: InjectedFault[] = [];
  private rules: Array<FaultRule & { seen: number }> = [];
  /** Descriptors opened through `io`, by number: write/fsync faults match on the path opened. */
  private readonly opened = new Map<number, string>();

  constructor(base: FileIo = NODE_FILE_IO, baseReads: FileReads = NODE_FILE_READS) {
    const plan = this;
    this.reads = {
      async opendir(path, options) {
        const partial = plan.listingCut(path);
        if (partial === undefined) return baseReads.opendir(path, options);
        const listing = await baseReads.opendir(path, options);
        return (async function* () {
          let given = 0;
          for await (const entry of listing) {
            if (given++ >= partial.after) throw partial.error;
            yield entry;
          }
        })();
      },
      async lstat(path) {
        plan.check('lstat', [path]);
        return baseReads.lstat(path);
      },
      ...(baseReads.lstatSync
        ? {
            lstatSync(path: string) {
              plan.check('lstat', [path]);
              return baseReads.lstatSync!(path);
            },
          }
        : {}),
      async readlink(path) {
        plan.check('readlink', [path]);
        return baseReads.readlink(path);
      },
    };
    this.io = {
      async open(path, flags, mode) {
        plan.check('open', [path]);
        const fd = await base.open(path, flags, mode);
        plan.opened.set(fd, realPath(path));
        return fd;
      },
      openSync(path, flags, mode) {
        plan.check('open', [path]);
        const fd = base.openSync(path, flags, mode);
        plan.opened.set(fd, realPath(path));
        return fd;
      },
      writeSync(fd, buffer, offset, length, position) {
        const kind = plan.check('write', plan.pathsOf(fd), true);
        if (kind === 'short' && length > 1) return base.writeSync(fd, buffer, offset, Math.floor(length / 2), position);
        return base.writeSync(fd, buffer, offset, length, position);
      },
      async write(fd, buffer, offset, length, position) {
        const kind = plan.check('write', plan.pathsOf(fd), true);
        if (kind === 'short' && length > 1) return base.write(fd, buffer, offset, Math.floor(length / 2), position);
        return base.write(fd, buffer, offset, length, position);
      },
      async fsync(fd) {
        plan.check('fsync', plan.pathsOf(fd));
        return base.fsync(fd);
      },
      async fdatasync(fd) {
        plan.check('fdatasync', plan.pathsOf(fd));
        return base.fdatasync(fd);
      },
      async truncate(fd, length) {
        plan.check('truncate', plan.pathsOf(fd));
        return base.truncate(fd, length);
      },
      renameSync(from, to) {
        plan.check('rename', [from, to]);
        base.renameSync(from, to);
      },
      linkSync(existing, link) {
        plan.check('link', [existing, link]);
        base.linkSync(existing, link);
      },
      async mkdir(path, options) {
        plan.check('mkdir', [path]);
        return base.mkdir(path, options);
      },
      async unlink(path) {
        plan.check('unlink', [path]);
        return base.unlink(path);
      },
      async rmdir(path) {
        plan.check('rmdir', [path]);
        return base.rmdir(path);
      },
      async symlink(target, path) {
        plan.check('symlink', [path]);
        return base.symlink(target, path);
      },
      async fchmod(fd, mode) {
        plan.check('chmod', plan.pathsOf(fd, true));
        return base.fchmod(fd, mode);
      },
      fchmodSync(fd, mode) {
        plan.check('chmod', plan.pathsOf(fd, true));
        base.fchmodSync(fd, mode);
      },
      async chmod(path, mode) {
        plan.check('chmod', [path]);
        return base.chmod(path, mode);
      },
      futimesSync(fd, atime, mtime) {
        plan.check('utimes', plan.pathsOf(fd, true));
        base.futimesSync(fd, atime, mtime);
      },
      async lutimes(path, atime, mtime) {
        plan.check('utimes', [path]);
        return base.lutimes(path, atime, mtime);
      },
    };
  }

  /**
   * For opendir: throws a rule's error at once, or returns where the listing is to fail (a rule with
   * afterEntries), or undefined when no rule matches.
   */
  private listingCut(path: string): { after: number; error: Error } | undefined {
    const rule = this.rules.find((one) => one.op === 'opendir' && one.afterEntries !== undefined && (!one.path || one.path.test(realPath(path))));
    if (!rule) {
      this.check('opendir', [path]);
      return undefined;
    }
    const paths = [realPath(path)];
    this.injected.push({ op: 'opendir', kind: rule.kind, paths });
    return { after: rule.afterEntries!, error: errnoError(rule.kind === 'short' ? 'EIO' : rule.kind, 'scandir', paths[0]!) };
  }

  /** Adds a rule; it holds until clear(). */
  inject(rule: FaultRule): void {
    this.rules.push({ ...rule, seen: 0 });
  }

  /** The fault ends: every call goes through again. */
  clear(): void {
    this.rules = [];
  }

  /** Faults injected for `op` so far. */
  count(op?: FaultOp): number {
    return op ? this.injected.filter((fault) => fault.op === op).length : this.injected.length;
  }

  /**
   * The path a descriptor was opened by through `io` (write, fsync: the temp file's name even once
   * renamed), or, `live`, as the kernel names it now (chmod, utimes: descriptors opened elsewhere).
   */
  private pathsOf(fd: number, live = false): string[] {
    const path = live ? undefined : this.opened.get(fd);
    if (path !== undefined) return [path];
    try {
      return [readlinkSync(`/proc/self/fd/${fd}`)];
    } catch {
      return [];
    }
  }

  /** Throws the rule's errno for a matching call; returns 'short' for a write to be cut short. */
  private check(op: FaultOp, named: string[], canBeShort = false): 'short' | undefined {
    const paths = named.map(realPath);
    for (const rule of this.rules) {
      if (rule.op !== op) continue;
      if (rule.path && !paths.some((path) => rule.path!.test(path))) continue;
      rule.seen++;
      if (rule.nth !== undefined && rule.seen !== rule.nth) continue;
      this.injected.push({ op, kind: rule.kind, paths });
      if (rule.kind === 'short') {
        if (canBeShort) return 'short';
        throw errnoError('EIO', op, paths[0] ?? '');
      }
      throw errnoError(rule.kind, op, paths[0] ?? '');
    }
    return undefined;
  }
}
