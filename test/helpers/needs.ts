// What a test needs from the machine (root, a Debian package's command, the network lab), as node:test's `skip`
// option: `describe('…', { skip: needs.root() }, …)`. Each check returns false when the need is met, else the reason
// with the command that meets it. Under CI (CI=true; .ci/run sets it, runs as root and `make test` installs every
// package) an unmet need throws instead, so CI fails rather than skipping silently.

import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout (this file runs from build/test/helpers/). */
const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');
/** The network lab beside the checkout, as the Makefile and scripts/install-deps.sh find it. */
export const NETLAB = process.env.NETLAB ?? process.env.NETLAB_DIR ?? resolve(ROOT, '../shared/netlab');
const INSTALL = 'sudo make system-deps';
/** Debian's Python, whose modules come from the Debian packages listed (a python3 on PATH may be another). */
export const PYTHON3 = '/usr/bin/python3';

/** false: go ahead; a string: why the test is skipped here. */
export type Skip = false | string;

export function underCi(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI !== undefined && env.CI !== '' && env.CI !== 'false' && env.CI !== '0';
}

function unmet(reason: string): Skip {
  if (underCi()) throw new Error(`CI=${process.env.CI}, so this test may not skip: ${reason}`);
  return reason;
}

/** The Debian packages `make test` installs (scripts/debian-packages), the one list a test's need must be on. */
function debianPackages(): Set<string> {
  const text = readFileSync(join(ROOT, 'scripts', 'debian-packages'), 'utf8');
  return new Set(text.split('\n').map((line) => line.replace(/#.*/, '').trim()).filter(Boolean));
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(command: string): boolean {
  const dirs = (process.env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/sbin']);
  return dirs.some((dir) => dir !== '' && executable(join(dir, command)));
}

/** WHAT from Debian package PKG, present or not; PKG must be on the list, also where WHAT happens to be installed. */
function packaged(what: string, pkg: string, present: boolean): Skip {
  if (!debianPackages().has(pkg)) throw new Error(`test needs Debian package ${pkg} (for ${what}), which scripts/debian-packages does not list`);
  return present ? false : unmet(`needs ${what} (Debian package ${pkg}): ${INSTALL}`);
}

export const needs = {
  /** Root (mounts, chroots, namespaces, users). */
  root(): Skip {
    return process.getuid?.() === 0 ? false : unmet('needs root: sudo make test');
  },

  /** COMMAND on PATH (or /usr/sbin), from Debian package PKG (default: the command's name). */
  command(command: string, pkg = command): Skip {
    return packaged(command, pkg, onPath(command));
  },

  /** An executable at PATH, from Debian package PKG. */
  file(path: string, pkg: string): Skip {
    return packaged(path, pkg, executable(path));
  },

  /** Root, the network lab's scripts and COMMANDS (from their Debian packages: [command, package] or the command's name). */
  netlab(...commands: Array<string | [string, string]>): Skip {
    const root = needs.root();
    if (root) return `${root} (the network lab's namespaces)`;
    if (!existsSync(join(NETLAB, 'lib.sh'))) return unmet(`needs the network lab at ${NETLAB} (set NETLAB=DIR)`);
    const missing = needs.all(needs.command('ip', 'iproute2'), ...commands.map((c) => (typeof c === 'string' ? needs.command(c) : needs.command(c[0], c[1]))));
    if (missing) return missing;
    // Root in a container without CAP_SYS_ADMIN / CAP_NET_ADMIN cannot make namespaces: try one.
    const probe = `ferry-needs-${process.pid}`;
    const added = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
    if (added.status !== 0) return unmet(`needs network namespaces (ip netns add: ${added.stderr.trim() || added.error?.message}): root with CAP_SYS_ADMIN and CAP_NET_ADMIN`);
    spawnSync('ip', ['netns', 'del', probe]);
    return false;
  },

  /** Debian's /usr/bin/python3 (not a pyenv one on PATH) able to import MODULES, each [module, Debian package]. */
  python(...modules: Array<[string, string]>): Skip {
    const python = needs.file(PYTHON3, 'python3');
    if (python) return python;
    for (const [module, pkg] of modules) {
      const imported = spawnSync(PYTHON3, ['-c', `import ${module}`], { encoding: 'utf8' });
      const missing = packaged(`the Python module ${module}`, pkg, imported.status === 0);
      if (missing) return missing;
    }
    return false;
  },

  /** The first unmet need among SKIPS, or false. */
  all(...skips: Skip[]): Skip {
    return skips.find((skip) => skip !== false) ?? false;
  },
};
