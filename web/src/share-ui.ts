/**
 * The shared console's toolbar items: a badge (viewers, who has control) and one button (request,
 * give or release control). Added to the toolbar when vncgate first says the console is shared;
 * a stock noVNC or an unshared console never shows them. `onWatching` tells the page whether
 * another viewer has control (then it sends no input: vncgate would drop it anyway).
 */
import type { ControlChannel } from './control-channel.js';
import { parseShareState, shareView } from './share.js';

export function mountShareControl(channel: ControlChannel, onWatching: (watching: boolean) => void): void {
  let badge: HTMLSpanElement | null = null;
  let button: HTMLButtonElement | null = null;
  let action: string | null = null;
  channel.on('control', (message) => {
    const state = parseShareState(message);
    if (state === null) return;
    const view = shareView(state);
    if (badge === null || button === null) {
      badge = document.getElementById('share-badge') as HTMLSpanElement | null;
      button = document.getElementById('btn-control') as HTMLButtonElement | null;
      if (badge === null || button === null) {
        badge = document.createElement('span');
        badge.className = 'badge';
        badge.id = 'share-badge';
        button = document.createElement('button');
        button.type = 'button';
        button.id = 'btn-control';
        const actions = document.querySelector('.toolbar .actions');
        actions?.parentElement?.insertBefore(badge, actions);
        actions?.prepend(button);
      }
      button.addEventListener('click', () => {
        if (action !== null) channel.request({ type: 'control', action });
      });
    }
    badge.textContent = view.badge;
    badge.hidden = false;
    button.textContent = view.button;
    button.hidden = false;
    action = view.action;
    button.disabled = action === null;
    document.body.dataset['control'] = view.watching ? 'watching' : 'controlling';
    onWatching(view.watching);
  });
}
