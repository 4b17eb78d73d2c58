// The versions dialog: a file's versions kept in the archive (time, size) with a restore button each,
// and the archive's size and what a purge under the folder's policy would free.

import { api, ApiError, type ArchivePlanReport, type VersionsReport } from './api.js';
import { clear, formatBytes, formatTime, h } from './dom.js';
import { openDialog } from './dialogs.js';

function policyText(plan: ArchivePlanReport): string {
  const p = plan.policy;
  const kind = p.kind === 'days' ? `kept ${p.days} days` : `staggered up to ${p.maxAgeDays} days (all for an hour, one per hour for a day, one per day for 30 days, then one per week)`;
  return `${kind}${p.maxArchiveBytes ? `, at most ${formatBytes(p.maxArchiveBytes)} (oldest removed first)` : ''}`;
}

export async function showVersions(folderId: string, folderPath: string, initialPath = ''): Promise<void> {
  const id = encodeURIComponent(folderId);
  const message = h('div', { class: 'form-error', attrs: { role: 'alert', id: 'versions-message' } });
  const archiveInfo = h('p', { class: 'hint', attrs: { id: 'archive-plan' } });
  const path = h('input', { attrs: { type: 'text', id: 'versions-path', 'aria-label': 'File', placeholder: 'path/in/the/folder.txt', value: initialPath, autocomplete: 'off', spellcheck: 'false' } });
  const show = h('button', { attrs: { type: 'submit' } }, 'Show versions');
  const table = h('table', { class: 'archive', attrs: { id: 'versions-table' } });

  const loadPlan = async (): Promise<void> => {
    const plan = await api<ArchivePlanReport>('GET', `/folders/${id}/archive/plan`);
    archiveInfo.textContent = `Archive: ${plan.files} ${plan.files === 1 ? 'version' : 'versions'}, ${formatBytes(plan.bytes)}; ${policyText(plan)}. ` +
      (plan.purgeFiles > 0 ? `The next purge frees ${formatBytes(plan.purgeBytes)} (${plan.purgeFiles} ${plan.purgeFiles === 1 ? 'version' : 'versions'}).` : 'The next purge frees nothing.');
  };

  const load = async (): Promise<void> => {
    const file = path.value.trim();
    clear(table);
    if (!file) return;
    const report = await api<VersionsReport>('GET', `/folders/${id}/versions?path=${encodeURIComponent(file)}`);
    if (report.versions.length === 0) {
      table.append(h('tbody', null, h('tr', null, h('td', null, `${report.path} has no archived versions.`))));
      return;
    }
    table.append(h('thead', null, h('tr', null, h('th', null, 'Archived'), h('th', null, 'Size'), h('th', null, 'Made by'), h('th', null, ''))));
    const body = h('tbody');
    for (const version of report.versions) {
      const restore = h('button', { attrs: { type: 'button', 'data-at': version.at } }, 'Restore');
      restore.addEventListener('click', () => {
        restore.disabled = true;
        message.className = 'form-error';
        api<{ path: string }>('POST', `/folders/${id}/versions/restore`, { path: report.path, at: version.archivedAtMs })
          .then((done) => {
            message.className = 'form-ok';
            message.textContent = `Restored ${done.path} to its version of ${formatTime(version.archivedAtMs)}; the version it replaced is in the archive. Other devices get it now.`;
            return Promise.all([load(), loadPlan()]);
          })
          .catch((err: ApiError) => {
            message.textContent = err.message;
            restore.disabled = false;
          });
      });
      body.append(h('tr', null, h('td', null, formatTime(version.archivedAtMs)), h('td', null, formatBytes(version.size)),
        h('td', null, version.device ? (version.deviceName ? `${version.deviceName} (${version.device.slice(0, 7)})` : version.device.slice(0, 7)) : '—'),
        h('td', null, restore)));
    }
    table.append(body);
  };

  const form = h('form', { class: 'inline' }, path, show);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    message.textContent = '';
    load().catch((err: ApiError) => (message.textContent = err.message));
  });
  openDialog(`Versions: ${folderPath}`, 'versions-dialog', archiveInfo, form, table, message);
  await Promise.all([loadPlan(), load()]).catch((err: ApiError) => (message.textContent = err.message));
}
