// Names a folder entry may not have on this device: the one home of the name rule for the disk (the
// scanner does not index them, the puller does not write them) and for the wire checks that want it.

/** Ferry's own directory at the folder root, as every case-insensitive volume sees it. */
const RESERVED_ROOT = '.ferry';

/**
 * Characters refused in any name, on the wire (src/protocol/checks.ts) and on disk alike: C0 controls
 * (NUL, tab, newline, ESC, …), DEL, C1 controls, and the bidirectional marks, embeddings, overrides
 * and isolates (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) that make a name read as
 * another (`exe.txt` shown for `txt.exe`). Everything else a Linux file system holds is a legal
 * name: backslash, colon, `?*<>|"`, a leading dash, a trailing dot or space, `CON`, `aux.txt`.
 */
const REFUSED_CHARACTER = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

/** Why a path or name is refused for its characters (REFUSED_CHARACTER), or undefined when every character is legal. */
export function refusedCharacter(text: string): string | undefined {
  const match = REFUSED_CHARACTER.exec(text);
  if (!match) return undefined;
  const code = match[0].codePointAt(0)!;
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  if (code === 0) return 'contains NUL';
  if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return `the name holds a control character (${hex})`;
  return `the name holds a bidirectional override (${hex})`;
}

/** Device names Windows reserves whatever the extension (`aux.txt` too), in any case. */
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3]|conin\$|conout\$)(\.|$)/i;
/** Characters Windows and SMB refuse in a name (legal between Linux devices, the backslash included). */
const WINDOWS_CHARS = /[<>:"|?*\\]/;

export interface NameRules {
  /** Also keep out what Windows and SMB clients cannot hold (the folder's "portable names" option). */
  portable?: boolean;
}

/** Why one name (a path segment) is refused, or undefined. `atRoot`: the segment is the path's first. */
export function refusedSegment(name: string, atRoot: boolean, rules: NameRules = {}): string | undefined {
  if (atRoot && name !== RESERVED_ROOT && name.normalize('NFC').toLowerCase() === RESERVED_ROOT) {
    return `${JSON.stringify(name)} is Ferry's reserved ${RESERVED_ROOT} directory on a case-insensitive volume`;
  }
  const character = refusedCharacter(name);
  if (character) return character;
  if (!rules.portable) return undefined;
  if (WINDOWS_DEVICE.test(name)) return `${JSON.stringify(name)} is a device name on Windows (portable names)`;
  const char = WINDOWS_CHARS.exec(name);
  if (char) return `${JSON.stringify(name)} holds ${JSON.stringify(char[0])}, which Windows refuses (portable names)`;
  if (/[. ]$/.test(name)) return `${JSON.stringify(name)} ends in a dot or a space, which Windows drops (portable names)`;
  return undefined;
}

/**
 * Why a folder-relative path ('/'-separated, as indexed) is refused on this device, or undefined
 * when every segment may be written and indexed.
 */
export function refusedName(path: string, rules: NameRules = {}): string | undefined {
  let start = 0;
  for (;;) {
    const slash = path.indexOf('/', start);
    const segment = slash < 0 ? path.slice(start) : path.slice(start, slash);
    const reason = refusedSegment(segment, start === 0, rules);
    if (reason !== undefined) return reason;
    if (slash < 0) return undefined;
    start = slash + 1;
  }
}
