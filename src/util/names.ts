// Names a folder entry may not have on this device: the one home of the name rule for the disk (the
// scanner does not index them, the puller does not write them) and for the wire checks that want it.

/** Ferry's own directory at the folder root, as every case-insensitive volume sees it. */
const RESERVED_ROOT = '.ferry';

/** C0 and C1 control characters (tab, newline and escape sequences in names). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** Bidirectional embeddings, overrides and isolates: they make a name read as another (`exe.txt` shown for `txt.exe`). */
const BIDI = /[\u202a-\u202e\u2066-\u2069]/;

/** Device names Windows reserves whatever the extension (`aux.txt` too), in any case. */
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3]|conin\$|conout\$)(\.|$)/i;
/** Characters Windows and SMB refuse in a name (the backslash never reaches the disk: the wire refuses it). */
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
  if (CONTROL.test(name)) return 'the name holds a control character';
  if (BIDI.test(name)) return 'the name holds a bidirectional override';
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
