/**
 * A notice over the top of the console that leaves it usable (unlike the failure notice, which
 * covers it) and goes away by itself or when dismissed.
 */
export interface Toast {
  show(text: string): void;
  hide(): void;
}

export function createToast(elements: { readonly box: HTMLElement; readonly text: HTMLElement; readonly close: HTMLButtonElement }, visibleMs: number): Toast {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hide = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    elements.box.hidden = true;
  };
  elements.close.addEventListener('click', hide);
  return {
    show(text) {
      if (timer !== undefined) clearTimeout(timer);
      elements.text.textContent = text;
      elements.box.hidden = false;
      timer = setTimeout(hide, visibleMs);
    },
    hide,
  };
}
