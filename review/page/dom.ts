/// <reference lib="dom" />
/**
 * Elements are built from text only: item titles and metadata come from listings
 * (untrusted), so nothing the server sends is ever parsed as HTML.
 */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: { className?: string; text?: string; attrs?: Record<string, string> } = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.text !== undefined) node.textContent = props.text;
  for (const [k, v] of Object.entries(props.attrs ?? {})) node.setAttribute(k, v);
  for (const child of children) node.append(child);
  return node;
}

export function show(...nodes: Node[]): void {
  document.getElementById('main')!.replaceChildren(...nodes);
}

export function setWhere(text: string): void {
  document.getElementById('where')!.textContent = text;
}

/** Shows an image large; a click or Escape closes it. */
export function zoom(src: string | undefined): void {
  const box = document.getElementById('zoom')!;
  if (!src) {
    box.hidden = true;
    return;
  }
  (document.getElementById('zoom-img') as HTMLImageElement).src = src;
  box.hidden = false;
}
