// The selective-sync dialog: the folder's tree from the index (sizes even for parts not on disk here),
// one directory at a time and paged, with a checkbox per directory: unchecked subtrees are not synced on this device.

import { api, ApiError, type SelectionReport, type TreeEntry } from './api.js';
import { clear, formatBytes, h } from './dom.js';
import { openDialog } from './dialogs.js';

/** Entries per page of one directory (the API's most). */
const TREE_PAGE = 500;

export async function showSelection(folderId: string, folderPath: string, access: string): Promise<void> {
  const id = encodeURIComponent(folderId);
  const message = h('div', { class: 'form-error', attrs: { role: 'alert', id: 'selection-message' } });
  const summary = h('p', { class: 'hint', attrs: { id: 'selection-summary' } });
  const tree = h('ul', { class: 'selection-tree', attrs: { id: 'selection-tree' } });
  const note =
    access === 'enc'
      ? h('p', { class: 'hint', attrs: { id: 'selection-enc' } }, 'This device holds the folder encrypted: it sees encrypted names only, so it can leave out encrypted subtrees but cannot tell which folders they are.')
      : null;

  const showSummary = (report: SelectionReport): void => {
    const local = report.localUnselected;
    summary.textContent =
      (report.excluded.length === 0 ? 'Every folder is synced on this device.' : `Not synced here: ${report.excluded.join(', ')}.`) +
      (local.count > 0 ? ` ${local.count} local ${local.count === 1 ? 'file' : 'files'} inside them (kept here, not sent): ${local.paths.slice(0, 5).join(', ')}${local.count > 5 ? ', …' : ''}.` : '');
  };

  const change = (entry: TreeEntry, box: HTMLInputElement): void => {
    box.disabled = true;
    message.className = 'form-error';
    message.textContent = '';
    api<SelectionReport>('POST', `/folders/${id}/selection`, box.checked ? { include: entry.path } : { exclude: entry.path })
      .then((report) => {
        showSummary(report);
        message.className = 'form-ok';
        message.textContent = box.checked ? `${entry.path} is synced on this device again: it is being fetched.` : `${entry.path} is no longer synced on this device; what is here stays.`;
        return loadInto(tree, '');
      })
      .catch((err: ApiError) => {
        message.textContent = err.message;
        box.checked = !box.checked;
        box.disabled = false;
      });
  };

  const row = (entry: TreeEntry): HTMLElement => {
    const name = entry.path.slice(entry.path.lastIndexOf('/') + 1);
    const size = `${formatBytes(entry.size)}${entry.type === 'dir' ? `, ${entry.files} ${entry.files === 1 ? 'file' : 'files'}` : ''}${entry.present ? '' : ' — not on this device'}`;
    const item = h('li', { attrs: { 'data-path': entry.path } });
    if (entry.type !== 'dir') {
      item.append(h('span', { class: 'tree-file' }, name), ' ', h('span', { class: 'hint' }, size));
      return item;
    }
    const box = h('input', { attrs: { type: 'checkbox', 'aria-label': `Sync ${entry.path} on this device`, ...(entry.selected ? { checked: true } : {}) } });
    box.addEventListener('change', () => change(entry, box));
    const children = h('ul', { class: 'selection-tree' });
    const open = h('button', { class: 'tree-open', attrs: { type: 'button', 'aria-expanded': 'false', 'aria-label': `Open ${entry.path}` } }, '▸');
    open.addEventListener('click', () => {
      const expanded = open.getAttribute('aria-expanded') === 'true';
      open.setAttribute('aria-expanded', expanded ? 'false' : 'true');
      open.textContent = expanded ? '▸' : '▾';
      if (expanded) clear(children);
      else loadInto(children, entry.path).catch((err: ApiError) => (message.textContent = err.message));
    });
    item.append(open, ' ', h('label', null, box, ' ', name), ' ', h('span', { class: 'hint' }, size), children);
    return item;
  };

  /** Lists one directory, a page at a time ("More" fetches the next). */
  const loadInto = async (list: HTMLElement, dir: string, offset = 0): Promise<void> => {
    const report = await api<SelectionReport>('GET', `/folders/${id}/selection?dir=${encodeURIComponent(dir)}&offset=${offset}&limit=${TREE_PAGE}`);
    if (dir === '') showSummary(report);
    if (offset === 0) clear(list);
    list.querySelector(':scope > li.more')?.remove();
    for (const entry of report.entries ?? []) list.append(row(entry));
    const shown = offset + (report.entries?.length ?? 0);
    if (shown < (report.total ?? 0)) {
      const more = h('button', { attrs: { type: 'button' } }, `More (${shown} of ${report.total})`);
      more.addEventListener('click', () => void loadInto(list, dir, shown).catch((err: ApiError) => (message.textContent = err.message)));
      list.append(h('li', { class: 'more' }, more));
    }
    if (dir === '' && shown === 0) list.append(h('li', { class: 'hint' }, 'The folder is empty.'));
  };

  openDialog(
    `Selective sync: ${folderPath}`,
    'selection-dialog',
    h('p', { class: 'hint' }, 'Unchecked folders are not synced on this device: nothing there is fetched, and nothing is deleted here or on other devices. The choice is this device\'s own.'),
    ...(note ? [note] : []),
    summary,
    tree,
    message,
  );
  await loadInto(tree, '').catch((err: ApiError) => (message.textContent = err.message));
}
