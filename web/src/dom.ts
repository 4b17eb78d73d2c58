// DOM building without HTML strings: every piece of data becomes a text node, never markup.

type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  /** Plain attributes (never `style` or `on*`: the CSP forbids inline code, and data stays text). */
  attrs?: Record<string, string | boolean | undefined>;
  on?: { [K in keyof HTMLElementEventMap]?: (event: HTMLElementEventMap[K]) => void };
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props | null = null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props?.class) el.className = props.class;
  for (const [name, value] of Object.entries(props?.attrs ?? {})) {
    if (/^on/i.test(name) || name === 'style') throw new Error(`attribute ${name} is not allowed`);
    if (value === true) el.setAttribute(name, '');
    else if (typeof value === 'string') el.setAttribute(name, value);
  }
  for (const [name, handler] of Object.entries(props?.on ?? {})) el.addEventListener(name, handler as EventListener);
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

export function clear(el: Node): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** Sets an element's text only when it changed (keeps selections stable under live updates). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit && value < 100 ? 1 : 0)} ${units[unit]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

export function formatTime(ms: number): string {
  return new Date(ms).toLocaleString();
}

/** A labelled form field with a slot for its validation message. */
export function field(label: string, input: HTMLElement, hint?: string): { row: HTMLElement; message: HTMLElement } {
  const message = h('div', { class: 'field-error', attrs: { role: 'alert' } });
  const row = h('label', { class: 'field' }, h('span', { class: 'label' }, label), input, hint ? h('small', { class: 'hint' }, hint) : null, message);
  return { row, message };
}
