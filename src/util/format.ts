// Human-readable figures for the CLI and the page.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${UNITS[unit]}`;
}

/** Characters of peer text kept by printable(). */
const MAX_PRINTABLE_CHARS = 1024;

/**
 * Peer-supplied text (paths, device names, close reasons) made safe for a terminal or a log: control
 * and bidirectional characters shown as `\u{…}`, at most MAX_PRINTABLE_CHARS kept.
 */
export function printable(text: string): string {
  return escapeControls(text.slice(0, MAX_PRINTABLE_CHARS));
}

/** C0/C1 control and bidirectional characters as `\u{…}` (what printable() does, without shortening). */
export function escapeControls(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}
