// The file browser's shapes, shared with the page (type-only there).

export interface DirectoryEntry {
  name: string;
  dir: boolean;
  size: number;
  mtimeMs: number;
}

/** A page of a directory, for the file browser (GET /api/files/:folder?path=). */
export interface DirectoryPage {
  folderId: string;
  path: string;
  /** Whether this session may change the folder (RW key, not a read-only password). */
  writable: boolean;
  /** Entries in the directory (up to the listing limit). */
  total: number;
  offset: number;
  /** More entries exist than one listing reads. */
  truncated: boolean;
  entries: DirectoryEntry[];
}
