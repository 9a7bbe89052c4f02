/**
 * vncgate console page: noVNC's RFB client plus a small toolbar. The proxy authenticates to the
 * console endpoint itself and offers the browser security type None, so the page never asks for
 * a password; what it must do well is say *why* a console cannot be shown (the proxy's RFB 3.8
 * SecurityResult reason) and keep the single-use token out of sight.
 */
import RFB from '@novnc/novnc';
import { ControlChannel, PAGE_PROTOCOLS } from './control-channel.js';
import { GRANT_RETRY_DELAY_MS, PageGrant } from './reconnect.js';
import { clipboardRefusal, clipboardView, parsePolicy, type PagePolicy } from './policy.js';
import { ConsoleLinkError, readConsoleSettings, RESIZE_MODES, scrubConsoleUrl } from './params.js';
import type { ConsoleSettings, ResizeMode } from './params.js';
import { resizeFallbackText, serverSupportsResize, watchRemoteResize } from './remote-resize.js';
import { cleanText, decodeRfbText } from './text.js';
import { mountShareControl } from './share-ui.js';
import { createToast } from './toast.js';

/** Automatic reconnecting stops after this many attempts in a row that never got connected. */
const MAX_FAILED_ATTEMPTS = 5;

/** How long a toast (a notice that does not cover the console) stays up. */
const TOAST_MS = 12_000;

/**
 * Close codes after which trying again cannot help: 1008 (policy violation) and the application
 * range 4000–4999, which vncgate uses for token, origin, idle-time and lifetime refusals
 * (src/errors.ts `wsClose`).
 */
function isFinalClose(code: number): boolean {
  return code === 1008 || (code >= 4000 && code <= 4999);
}

type PageState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'failed';

/** One WebSocket + RFB pair. noVNC's `disconnect` event and the socket's `close` event arrive in either order. */
interface Attempt {
  readonly rfb: RFB;
  connected: boolean;
  ended: { readonly clean: boolean } | undefined;
  close: { readonly code: number; readonly reason: string } | undefined;
  /** Set by `securityfailure`: the reason to show ('' when the server gave none). */
  securityFailure: string | undefined;
  credentialsRequired: boolean;
  /** Whether the endpoint can change its resolution; undefined until its first framebuffer update. */
  resizable: boolean | undefined;
  /** What vncgate said this session may do (its control channel); undefined until it says. */
  policy: PagePolicy | undefined;
  /** A shared console where another viewer has control (share-ui.ts). */
  watching?: boolean;
}

interface Outcome {
  readonly state: PageState;
  readonly status: string;
  readonly title: string;
  readonly text: string;
  /** Retrying with the same link cannot succeed (used token, refused, idle timeout…). */
  readonly final: boolean;
}

function byId<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`console page: #${id} is missing`);
  return element;
}

const ui = {
  statusText: byId('status-text', HTMLSpanElement),
  viewOnlyBadge: byId('view-only-badge', HTMLSpanElement),
  connect: byId('btn-connect', HTMLButtonElement),
  cad: byId('btn-cad', HTMLButtonElement),
  clipboardToggle: byId('btn-clipboard', HTMLButtonElement),
  resizeMode: byId('resize-mode', HTMLSelectElement),
  fullscreen: byId('btn-fullscreen', HTMLButtonElement),
  clipboardPanel: byId('clipboard-panel', HTMLElement),
  clipboardText: byId('clipboard-text', HTMLTextAreaElement),
  clipboardSend: byId('clipboard-send', HTMLButtonElement),
  clipboardNote: byId('clipboard-note', HTMLSpanElement),
  screen: byId('screen', HTMLDivElement),
  notice: byId('notice', HTMLDivElement),
  noticeTitle: byId('notice-title', HTMLHeadingElement),
  noticeText: byId('notice-text', HTMLParagraphElement),
  noticeRetry: byId('notice-retry', HTMLButtonElement),
};
const toast = createToast(
  { box: byId('toast', HTMLDivElement), text: byId('toast-text', HTMLSpanElement), close: byId('toast-close', HTMLButtonElement) },
  TOAST_MS,
);

let settings: ConsoleSettings | undefined;
/** This page's key and the reconnect grant vncgate last sent (reconnect.ts). */
const pageGrant = new PageGrant();
let current: Attempt | undefined;
let failedAttempts = 0;
let reconnectTimer: ReturnType<typeof setTimeout> | undefined;
let desktopName = '';
let resizeMode: ResizeMode = 'scale';
/** Set when the page's own CSP refused the WebSocket URL (a `host`/`port` pointing elsewhere). */
let connectBlocked = false;

function setState(state: PageState, status: string): void {
  document.body.dataset['state'] = state;
  ui.statusText.textContent = status;
}

function showNotice(title: string, text: string, offerRetry: boolean): void {
  ui.noticeTitle.textContent = title;
  ui.noticeText.textContent = text;
  ui.noticeRetry.hidden = !offerRetry;
  ui.notice.hidden = false;
}

function hideNotice(): void {
  ui.notice.hidden = true;
}

/**
 * View-only if vncgate says so (it enforces that in its relay) or the link asks for it; a link's
 * `view_only=0` cannot undo vncgate's word.
 */
function isViewOnly(attempt: Attempt | undefined): boolean {
  return settings?.viewOnly === true || attempt?.policy?.viewOnly === true || attempt?.watching === true;
}

/** Shows the policy vncgate sent for `attempt`: badge, noVNC's own view-only flag, clipboard panel. */
function applyPolicy(attempt: Attempt): void {
  if (attempt !== current) return;
  const viewOnly = isViewOnly(attempt);
  attempt.rfb.viewOnly = viewOnly;
  ui.viewOnlyBadge.hidden = !viewOnly;
  const policy = attempt.policy;
  document.body.dataset['viewOnly'] = String(viewOnly);
  if (policy !== undefined) {
    document.body.dataset['clipboard'] = policy.clipboard;
    ui.clipboardNote.textContent = clipboardView(policy).note;
  }
  setSessionControls(attempt.connected);
}

function setResizeMode(mode: ResizeMode): void {
  resizeMode = mode;
  ui.resizeMode.value = mode;
  if (current !== undefined) applyResize(current.rfb, mode);
}

/**
 * "Resize remote" on an endpoint that cannot resize would leave the console unscaled and say
 * nothing (noVNC then neither resizes nor scales): fall back to scaling, and say why.
 */
function checkRemoteResize(attempt: Attempt): void {
  if (attempt !== current || resizeMode !== 'remote') return;
  if (isViewOnly(attempt)) {
    // noVNC never asks a server to resize from a view-only session.
    setResizeMode('scale');
    toast.show(resizeFallbackText({ kind: 'view-only' }));
  } else if (attempt.resizable === false && !serverSupportsResize(attempt.rfb)) {
    setResizeMode('scale');
    toast.show(resizeFallbackText({ kind: 'unsupported' }));
  }
}

function setSessionControls(enabled: boolean): void {
  const input = enabled && !isViewOnly(current);
  const policy = current?.policy;
  ui.cad.disabled = !input;
  ui.clipboardSend.disabled = !input || (policy !== undefined && !clipboardView(policy).canSend);
}

function applyResize(rfb: RFB, mode: ResizeMode): void {
  rfb.scaleViewport = mode === 'scale';
  rfb.resizeSession = mode === 'remote';
  rfb.clipViewport = false;
}

function clearReconnect(): void {
  if (reconnectTimer !== undefined) clearTimeout(reconnectTimer);
  reconnectTimer = undefined;
}

function connect(): void {
  if (settings === undefined) return;
  clearReconnect();
  hideNotice();
  ui.connect.hidden = true;
  connectBlocked = false;
  setState(failedAttempts > 0 || current !== undefined ? 'reconnecting' : 'connecting', 'Connecting…');

  // Assigned below; the close listener goes on first so that, when the socket closes while
  // connected, the close code is known by the time noVNC reports `disconnect`.
  let created: Attempt | undefined;
  let rfb: RFB;
  let channel: ControlChannel;
  try {
    // Our own WebSocket (rather than a URL for noVNC to open) so the close code and reason the
    // proxy sends are visible; noVNC only reports clean/unclean. Subprotocol `vncgate.v1` is
    // vncgate's control channel (control-channel.ts), `binary` what websockify-era proxies expect.
    const ws = new WebSocket(pageGrant.next(settings.url), [...PAGE_PROTOCOLS, pageGrant.protocol]);
    channel = new ControlChannel(ws);
    ws.addEventListener('close', (ev) => {
      pageGrant.dropped();
      if (created === undefined) return;
      created.close = { code: ev.code, reason: ev.reason };
      if (created.ended !== undefined) settle(created);
    });
    rfb = new RFB(ui.screen, channel, { shared: settings.shared });
  } catch {
    // Chromium throws here when the page's CSP connect-src refuses the URL.
    current = undefined;
    setState('failed', 'Not connected');
    showNotice('Console unavailable', blockedText(), false);
    return;
  }
  const attempt: Attempt = {
    rfb,
    connected: false,
    ended: undefined,
    close: undefined,
    securityFailure: undefined,
    credentialsRequired: false,
    resizable: undefined,
    policy: undefined,
  };
  created = attempt;
  current = attempt;
  channel.on('reconnect', (message) => pageGrant.accept(message));
  channel.on('policy', (message) => {
    const policy = parsePolicy(message);
    if (policy === null) return;
    attempt.policy = policy;
    applyPolicy(attempt);
  });
  mountShareControl(channel, (watching) => {
    attempt.watching = watching;
    applyPolicy(attempt);
  });

  watchRemoteResize(rfb, {
    supportKnown: (supported) => {
      attempt.resizable = supported;
      checkRemoteResize(attempt);
    },
    refused: (status) => {
      if (attempt !== current || resizeMode !== 'remote') return;
      setResizeMode('scale');
      toast.show(resizeFallbackText({ kind: 'refused', status }));
    },
  });

  rfb.viewOnly = isViewOnly(attempt);
  rfb.showDotCursor = settings.showDot;
  applyResize(rfb, resizeMode);

  rfb.addEventListener('connect', () => {
    if (attempt !== current) return;
    attempt.connected = true;
    failedAttempts = 0;
    setState('connected', desktopName === '' ? 'Connected' : `Connected to ${desktopName}`);
    setSessionControls(true);
    rfb.focus();
  });
  rfb.addEventListener('desktopname', (ev) => {
    if (attempt !== current) return;
    desktopName = cleanText(ev.detail.name);
    document.title = desktopName === '' ? 'Console' : `${desktopName} – Console`;
    if (attempt.connected) setState('connected', `Connected to ${desktopName}`);
  });
  rfb.addEventListener('securityfailure', (ev) => {
    attempt.securityFailure = ev.detail.reason === undefined ? '' : decodeRfbText(ev.detail.reason);
  });
  rfb.addEventListener('credentialsrequired', () => {
    // The proxy offers None; a password prompt means something in between is not vncgate.
    attempt.credentialsRequired = true;
    rfb.disconnect();
  });
  rfb.addEventListener('clipboard', (ev) => {
    // vncgate cannot strip a console's plain ServerCutText; the page does not show it either.
    if (attempt.policy !== undefined && !clipboardView(attempt.policy).canReceive) return;
    ui.clipboardText.value = ev.detail.text;
    ui.clipboardNote.textContent = 'Received from the remote machine.';
  });
  rfb.addEventListener('disconnect', (ev) => {
    attempt.ended = { clean: ev.detail.clean };
    if (!attempt.connected) failedAttempts += 1;
    if (attempt === current) setSessionControls(false);
    settle(attempt);
  });
}

function blockedText(): string {
  return 'This page may not connect to the console server named in the link. Open the console from the link your cloud gave you.';
}

function describe(attempt: Attempt): Outcome {
  const close = attempt.close;
  const closeReason = close !== undefined && close.code !== 1000 && close.code !== 1005 ? cleanText(close.reason) : '';
  const closeFinal = close !== undefined && isFinalClose(close.code);

  if (attempt.securityFailure !== undefined) {
    const text = attempt.securityFailure === '' ? 'The console service refused the connection.' : attempt.securityFailure;
    return { state: 'failed', status: 'Not connected', title: 'Console unavailable', text, final: true };
  }
  if (attempt.credentialsRequired) {
    const text = 'The console asked for a password, which this page does not handle. Ask your operator to check the console service.';
    return { state: 'failed', status: 'Not connected', title: 'Console unavailable', text, final: true };
  }
  if (connectBlocked) {
    return { state: 'failed', status: 'Not connected', title: 'Console unavailable', text: blockedText(), final: true };
  }
  if (closeReason !== '') {
    const title = attempt.connected ? 'Console closed' : 'Console unavailable';
    return { state: 'failed', status: attempt.connected ? 'Disconnected' : 'Not connected', title, text: closeReason, final: closeFinal };
  }
  if (!attempt.connected) {
    return { state: 'failed', status: 'Not connected', title: 'Console unavailable', text: 'Could not connect to the console service.', final: closeFinal };
  }
  // noVNC calls a server-side close while connected "clean"; an abnormal socket close (1006) is not.
  if (attempt.ended?.clean === false || close?.code === 1006) {
    return { state: 'failed', status: 'Connection lost', title: 'Connection lost', text: 'The connection to the console was interrupted.', final: closeFinal };
  }
  return { state: 'disconnected', status: 'Disconnected', title: 'Console closed', text: 'The console session ended.', final: closeFinal };
}

/** Shows how `attempt` ended and decides on reconnecting; runs again when late close details arrive. */
function settle(attempt: Attempt): void {
  if (attempt !== current || attempt.ended === undefined || settings === undefined) return;
  const outcome = describe(attempt);
  // With a reconnect grant the console comes back by itself, even if the link did not ask for
  // noVNC's reconnect (without one, a used single-use token cannot help).
  const withGrant = !outcome.final && pageGrant.usable();
  if (outcome.final) pageGrant.forget();
  const retry = (settings.reconnect || withGrant) && !outcome.final && failedAttempts < MAX_FAILED_ATTEMPTS;
  if (retry) {
    if (reconnectTimer === undefined) {
      reconnectTimer = setTimeout(() => {
        reconnectTimer = undefined;
        connect();
      }, settings.reconnect ? settings.reconnectDelayMs : GRANT_RETRY_DELAY_MS);
    }
    hideNotice();
    setState('reconnecting', `${outcome.status} – reconnecting…`);
    return;
  }
  clearReconnect();
  setState(outcome.state, outcome.status);
  // A used single-use token stays used: offer "Reconnect" only where it can help.
  showNotice(outcome.title, outcome.text, !outcome.final);
}

function wireToolbar(): void {
  ui.connect.addEventListener('click', () => {
    failedAttempts = 0;
    connect();
  });
  ui.noticeRetry.addEventListener('click', () => {
    failedAttempts = 0;
    connect();
  });

  ui.cad.addEventListener('click', () => {
    current?.rfb.sendCtrlAltDel();
    current?.rfb.focus();
  });

  ui.clipboardToggle.addEventListener('click', () => {
    const open = ui.clipboardPanel.hidden;
    ui.clipboardPanel.hidden = !open;
    ui.clipboardToggle.setAttribute('aria-expanded', String(open));
    if (open) ui.clipboardText.focus();
  });
  ui.clipboardSend.addEventListener('click', () => {
    if (current?.connected !== true) return;
    const refusal = current.policy === undefined ? null : clipboardRefusal(current.policy, ui.clipboardText.value);
    if (refusal !== null) {
      ui.clipboardNote.textContent = refusal;
      return;
    }
    current.rfb.clipboardPasteFrom(ui.clipboardText.value);
    ui.clipboardNote.textContent = 'Sent to the remote machine.';
  });

  ui.resizeMode.value = resizeMode;
  ui.resizeMode.addEventListener('change', () => {
    const mode = RESIZE_MODES.find((m) => m === ui.resizeMode.value);
    if (mode === undefined) return;
    setResizeMode(mode);
    if (mode !== 'remote') toast.hide();
    if (current !== undefined) checkRemoteResize(current);
  });

  // Inside an iframe without allow="fullscreen" the API is unavailable: hide the button.
  ui.fullscreen.hidden = !document.fullscreenEnabled;
  ui.fullscreen.addEventListener('click', () => {
    if (document.fullscreenElement) {
      void document.exitFullscreen();
    } else {
      document.documentElement.requestFullscreen().catch(() => undefined);
    }
  });
  document.addEventListener('fullscreenchange', () => {
    const on = document.fullscreenElement !== null;
    ui.fullscreen.setAttribute('aria-pressed', String(on));
    ui.fullscreen.textContent = on ? 'Exit full screen' : 'Full screen';
  });

  document.addEventListener('securitypolicyviolation', (ev) => {
    if (ev.effectiveDirective !== 'connect-src') return;
    connectBlocked = true;
    if (current !== undefined) settle(current);
  });
}

function start(): void {
  const href = window.location.href;
  try {
    settings = readConsoleSettings(href);
  } catch (error) {
    setState('failed', 'Not connected');
    const text = error instanceof ConsoleLinkError ? error.message : 'This console link is not valid.';
    showNotice('Console unavailable', text, false);
    return;
  } finally {
    // The token has been read; take it out of the address bar, history and any bookmark.
    const scrubbed = scrubConsoleUrl(href);
    if (scrubbed !== href) window.history.replaceState(window.history.state, '', scrubbed);
  }

  resizeMode = settings.resize;
  ui.viewOnlyBadge.hidden = !settings.viewOnly;
  wireToolbar();

  if (settings.autoconnect) {
    connect();
  } else {
    setState('idle', 'Not connected');
    ui.connect.hidden = false;
  }
}

start();
