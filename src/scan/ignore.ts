// Ignore rules of a folder: the built-in ones (Ferry's own files, NAS litter) plus `.ferryignore` in gitignore syntax.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { ioError } from '../errors.js';

/**
 * The per-folder user rules file, at the folder root. It is local to each device, as Syncthing's
 * `.stignore` is: indexed here but never sent to peers, and one received from a peer is dropped,
 * so one device's rules never silently stop another's sync (isLocalOnly).
 */
export const IGNORE_FILE = '.ferryignore';

/** Whether a folder-relative path stays on this device: never sent to peers, never taken from them. */
export function isLocalOnly(relPath: string): boolean {
  return relPath === IGNORE_FILE;
}

/** Ferry's own directory at the folder root (archive, temp state); never synced. */
export const FERRY_DIR = '.ferry';

/** Prefix of the puller's temp files, written beside their target at any depth. */
export const TEMP_FILE_PREFIX = '.ferry-tmp-';

/** Names that NAS systems and desktops scatter everywhere (thumbnails, recycle bins, metadata), ignored at any depth. */
export const NAS_LITTER_NAMES: ReadonlySet<string> = new Set([
  '@eaDir',
  '#recycle',
  '#snapshot',
  '.@__thumb',
  '.@__qini',
  '.DS_Store',
  'Thumbs.db',
  'desktop.ini',
]);

function baseName(relPath: string): string {
  const slash = relPath.lastIndexOf('/');
  return slash < 0 ? relPath : relPath.slice(slash + 1);
}

/** True when the path itself (not its parents) matches a built-in rule. */
function isBuiltInIgnored(relPath: string): boolean {
  if (relPath === FERRY_DIR) return true;
  const name = baseName(relPath);
  return NAS_LITTER_NAMES.has(name) || name.startsWith(TEMP_FILE_PREFIX);
}

/** Whether a path is one of the subtrees or inside one ('/'-separated folder-relative paths). */
export function insideSubtrees(relPath: string, subtrees: readonly string[]): boolean {
  for (const subtree of subtrees) {
    if (relPath === subtree || relPath.startsWith(subtree + '/')) return true;
  }
  return false;
}

export class IgnoreRules {
  private constructor(
    private readonly user: Ignore | null,
    /** Subtrees this device does not take (selective sync): ignored like the rules, reported apart. */
    private readonly excluded: readonly string[] = [],
  ) {}

  /** These rules plus a selection: the subtrees this device does not sync (never the root). */
  withExcluded(excluded: readonly string[] | undefined): IgnoreRules {
    if (!excluded || excluded.length === 0) return this;
    return new IgnoreRules(this.user, excluded.filter((subtree) => subtree !== ''));
  }

  /** Whether the path lies in a subtree this device does not take (selective sync). */
  unselected(relPath: string): boolean {
    return this.excluded.length > 0 && relPath !== '' && insideSubtrees(relPath, this.excluded);
  }

  /** Rules with only the built-ins (no `.ferryignore`). */
  static builtIn(): IgnoreRules {
    return new IgnoreRules(null);
  }

  /** Rules from gitignore-syntax text plus the built-ins (for tests and for rules not read from disk). */
  static fromText(text: string): IgnoreRules {
    // Case-sensitive, as git and Syncthing are on Linux filesystems.
    return new IgnoreRules(ignore({ ignorecase: false }).add(text));
  }

  /** Reads `<folderRoot>/.ferryignore` if there is one; a missing file means built-ins only. */
  static async load(folderRoot: string): Promise<IgnoreRules> {
    let text: string;
    try {
      text = await readFile(join(folderRoot, IGNORE_FILE), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return IgnoreRules.builtIn();
      throw ioError(`reading ${IGNORE_FILE}`, err);
    }
    return IgnoreRules.fromText(text);
  }

  /**
   * Whether a folder-relative path ('/'-separated, no leading slash) is ignored, by itself or because a
   * parent directory is. The root ('') and the root `.ferryignore` never are.
   */
  ignores(relPath: string, isDirectory: boolean): boolean {
    if (relPath === '' || relPath === IGNORE_FILE) return false;
    // Built-ins apply to every ancestor too: anything inside `@eaDir/` or `.ferry/` is ignored.
    let start = 0;
    for (;;) {
      const slash = relPath.indexOf('/', start);
      const prefix = slash < 0 ? relPath : relPath.slice(0, slash);
      if (isBuiltInIgnored(prefix)) return true;
      if (slash < 0) break;
      start = slash + 1;
    }
    if (this.unselected(relPath)) return true;
    if (!this.user) return false;
    // The ignore package matches dir-only patterns (`build/`) against paths with a trailing slash,
    // and checks parent directories itself.
    return this.user.ignores(isDirectory ? relPath + '/' : relPath);
  }
}
