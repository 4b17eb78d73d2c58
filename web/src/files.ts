// The file browser: a folder's directories page by page; download (ranges work: it is the WebDAV GET), a
// directory as a zip stream, upload
// (the browser streams the file; the daemon writes a temp file and renames it), new folder, rename, delete (to the
// archive). Every change is an ordinary local edit that syncs. It talks WebDAV to /dav/ with the session.

import { api, ApiError, dav, davPath, type DirectoryPage } from './api.js';
import { clear, formatBytes, formatTime, h } from './dom.js';
import { openDialog } from './dialogs.js';

const PAGE = 200;

export async function showFiles(folderId: string, folderPath: string): Promise<void> {
  const message = h('div', { class: 'form-error', attrs: { role: 'alert', id: 'files-message' } });
  const crumbs = h('nav', { class: 'crumbs', attrs: { id: 'files-crumbs', 'aria-label': 'Path' } });
  const table = h('table', { class: 'archive files', attrs: { id: 'files-table' } });
  const upload = h('input', { attrs: { type: 'file', multiple: true, id: 'files-upload', 'aria-label': 'Upload files' } });
  const uploadLabel = h('label', { class: 'button', attrs: { for: 'files-upload' } }, 'Upload…');
  const mkdir = h('button', { attrs: { type: 'button', id: 'files-mkdir' } }, 'New folder');
  const zipHere = h('a', { class: 'button', attrs: { id: 'files-zip', download: '' } }, 'Download as zip');
  const zipUrl = (dir: string): string => `/api/files/${encodeURIComponent(folderId)}/zip?path=${encodeURIComponent(dir)}`;
  const prev = h('button', { attrs: { type: 'button', id: 'files-prev' } }, 'Previous');
  const next = h('button', { attrs: { type: 'button', id: 'files-next' } }, 'Next');
  const pageInfo = h('span', { class: 'hint', attrs: { id: 'files-page' } });
  const progress = h('span', { class: 'hint', attrs: { id: 'files-progress', role: 'status' } });
  let path = '';
  let offset = 0;

  const say = (text: string, ok = false): void => {
    message.className = ok ? 'form-ok' : 'form-error';
    message.textContent = text;
  };
  const join = (name: string): string => (path ? `${path}/${name}` : name);

  const load = async (): Promise<void> => {
    let page: DirectoryPage;
    try {
      page = await api<DirectoryPage>('GET', `/files/${encodeURIComponent(folderId)}?path=${encodeURIComponent(path)}&offset=${offset}&limit=${PAGE}`);
    } catch (err) {
      say((err as ApiError).message);
      return;
    }
    clear(crumbs);
    const parts = page.path ? page.path.split('/') : [];
    const goTo = (to: string): HTMLButtonElement => {
      const button = h('button', { class: 'link', attrs: { type: 'button', 'data-path': to } }, to === '' ? 'Top' : to.split('/').pop()!);
      button.addEventListener('click', () => {
        path = to;
        offset = 0;
        void load();
      });
      return button;
    };
    crumbs.append(goTo(''));
    parts.forEach((_, i) => crumbs.append(' / ', goTo(parts.slice(0, i + 1).join('/'))));
    for (const el of [uploadLabel, upload, mkdir]) el.toggleAttribute('hidden', !page.writable);
    zipHere.setAttribute('href', zipUrl(page.path));
    prev.disabled = offset === 0;
    next.disabled = offset + page.entries.length >= page.total;
    pageInfo.textContent = page.total ? `${offset + 1}–${offset + page.entries.length} of ${page.total}${page.truncated ? '+' : ''}` : '';
    clear(table);
    table.append(h('thead', null, h('tr', null, h('th', null, 'Name'), h('th', null, 'Modified'), h('th', null, 'Size'), h('th', null, ''))));
    const body = h('tbody');
    for (const entry of page.entries) {
      const full = join(entry.name);
      let name: HTMLElement;
      if (entry.dir) {
        name = h('button', { class: 'link dir', attrs: { type: 'button', 'data-dir': entry.name } }, `${entry.name}/`);
        name.addEventListener('click', () => {
          path = full;
          offset = 0;
          void load();
        });
      } else {
        name = h('a', { attrs: { href: davPath(folderId, full), download: entry.name, 'data-file': entry.name } }, entry.name);
      }
      const actions = h('td', { class: 'row-actions' });
      if (entry.dir) actions.append(h('a', { class: 'button', attrs: { href: zipUrl(full), download: '', 'data-zip': entry.name } }, 'Zip'));
      if (page.writable) {
        const rename = h('button', { attrs: { type: 'button', 'data-rename': entry.name } }, 'Rename');
        rename.addEventListener('click', () => {
          const to = prompt(`New name for ${entry.name}`, entry.name);
          if (!to || to === entry.name) return;
          if (/[/\\]/.test(to) || to === '.' || to === '..') {
            say('A name cannot hold / or \\.');
            return;
          }
          dav('MOVE', davPath(folderId, full, entry.dir), {
            headers: { Destination: `${location.origin}${davPath(folderId, join(to), entry.dir)}`, Overwrite: 'F' },
          })
            .then(() => {
              say(`Renamed ${entry.name} to ${to}.`, true);
              return load();
            })
            .catch((err: ApiError) => say(err.status === 412 ? `${to} exists already.` : err.message));
        });
        const remove = h('button', { class: 'danger', attrs: { type: 'button', 'data-delete': entry.name } }, 'Delete');
        remove.addEventListener('click', () => {
          if (!confirm(`Delete ${entry.dir ? 'the folder ' : ''}${entry.name}? ${entry.dir ? 'Its files go' : 'It goes'} to the archive, where it can be restored.`)) return;
          dav('DELETE', davPath(folderId, full, entry.dir))
            .then(() => {
              say(`Deleted ${entry.name} (kept in the archive).`, true);
              return load();
            })
            .catch((err: ApiError) => say(err.message));
        });
        actions.append(rename, remove);
      }
      body.append(
        h('tr', { attrs: { 'data-entry': entry.name } }, h('td', { class: 'file' }, name), h('td', null, formatTime(entry.mtimeMs)),
          h('td', null, entry.dir ? '' : formatBytes(entry.size)), actions),
      );
    }
    if (page.entries.length === 0) body.append(h('tr', null, h('td', { attrs: { colspan: '4' }, class: 'empty' }, 'This folder is empty.')));
    table.append(body);
  };

  prev.addEventListener('click', () => {
    offset = Math.max(0, offset - PAGE);
    void load();
  });
  next.addEventListener('click', () => {
    offset += PAGE;
    void load();
  });
  mkdir.addEventListener('click', () => {
    const name = prompt('Name of the new folder');
    if (!name) return;
    if (/[/\\]/.test(name) || name === '.' || name === '..') {
      say('A name cannot hold / or \\.');
      return;
    }
    dav('MKCOL', davPath(folderId, join(name), true))
      .then(() => {
        say(`Created ${name}.`, true);
        return load();
      })
      .catch((err: ApiError) => say(err.status === 405 ? `${name} exists already.` : err.message));
  });
  upload.addEventListener('change', () => {
    const files = [...(upload.files ?? [])];
    upload.value = '';
    void (async () => {
      let done = 0;
      for (const file of files) {
        progress.textContent = `Uploading ${file.name} (${formatBytes(file.size)})…`;
        try {
          // The File is streamed from disk by the browser; the daemon renames it into place when complete.
          await dav('PUT', davPath(folderId, join(file.name)), { body: file, headers: { 'content-type': 'application/octet-stream' } });
          done++;
        } catch (err) {
          say(`${file.name}: ${(err as ApiError).message}`);
        }
      }
      progress.textContent = '';
      if (done) say(`Uploaded ${done} ${done === 1 ? 'file' : 'files'}.`, true);
      await load();
    })();
  });

  await load();
  openDialog(
    'Files',
    'files-dialog',
    h('p', { class: 'dialog-path' }, folderPath),
    h('p', { class: 'hint' }, 'Changes here are ordinary edits of the folder: they sync to the peers. Deleted files go to the archive.'),
    crumbs,
    h('div', { class: 'archive-pages' }, uploadLabel, upload, mkdir, zipHere, prev, pageInfo, next, progress),
    message,
    h('div', { class: 'table-wrap' }, table),
  );
}
