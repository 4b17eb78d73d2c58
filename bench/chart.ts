// A small SVG bar chart of the sync benchmarks: Ferry, Syncthing and the cp floor per dataset, seconds.

export interface ChartGroup {
  label: string;
  bars: Array<{ name: string; value: number; text: string }>;
}

const COLOURS: Record<string, string> = { Ferry: '#2b7a78', Syncthing: '#8a8f98', 'cp -r': '#d9a441' };

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Horizontal bars, one group per dataset, each group on its own scale (its longest bar fills the width). */
export function barChart(title: string, groups: ChartGroup[]): string {
  const width = 720;
  const labelWidth = 90;
  const barArea = width - labelWidth - 150;
  const barHeight = 18;
  const groupGap = 16;
  let y = 48;
  const parts: string[] = [];
  for (const group of groups) {
    const max = Math.max(...group.bars.map((b) => b.value), 1e-9);
    parts.push(`<text x="10" y="${y + (group.bars.length * (barHeight + 4)) / 2 + 4}" font-weight="bold">${escape(group.label)}</text>`);
    for (const bar of group.bars) {
      const w = Math.max(1, (bar.value / max) * barArea);
      parts.push(`<rect x="${labelWidth}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${COLOURS[bar.name] ?? '#555'}"/>`);
      parts.push(`<text x="${labelWidth + w + 6}" y="${y + 13}">${escape(`${bar.name} ${bar.text}`)}</text>`);
      y += barHeight + 4;
    }
    y += groupGap;
  }
  const height = y + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="24" font-size="15" font-weight="bold">${escape(title)}</text>
${parts.join('\n')}
</svg>
`;
}
