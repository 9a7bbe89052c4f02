/**
 * The part of noVNC 1.7's RFB API (node_modules/@novnc/novnc/docs/API.md) this page uses.
 * `@novnc/novnc` ships no types; its package `exports` maps the bare name to core/rfb.js.
 */
declare module '@novnc/novnc' {
  export interface RfbOptions {
    shared?: boolean;
    credentials?: { username?: string; password?: string; target?: string };
    repeaterID?: string;
    wsProtocols?: string[];
  }

  export interface RfbEventMap {
    connect: CustomEvent<Record<string, never>>;
    disconnect: CustomEvent<{ clean: boolean }>;
    /** RFB 3.8 SecurityResult failure; `reason` is absent when the server sent none. */
    securityfailure: CustomEvent<{ status: number; reason?: string }>;
    credentialsrequired: CustomEvent<{ types: string[] }>;
    desktopname: CustomEvent<{ name: string }>;
    clipboard: CustomEvent<{ text: string }>;
    bell: CustomEvent<Record<string, never>>;
  }

  /** noVNC 1.7's "raw channel" (core/websock.js `rawChannelProps`): a WebSocket-like object. */
  export interface RawChannel {
    binaryType: string;
    readonly protocol: string;
    readonly readyState: number;
    send(data: Uint8Array): void;
    close(): void;
    onopen: ((ev: unknown) => void) | null;
    onmessage: ((ev: unknown) => void) | null;
    onclose: ((ev: unknown) => void) | null;
    onerror: ((ev: unknown) => void) | null;
  }

  export default class RFB extends EventTarget {
    constructor(target: HTMLElement, urlOrChannel: string | RawChannel, options?: RfbOptions);

    viewOnly: boolean;
    scaleViewport: boolean;
    resizeSession: boolean;
    clipViewport: boolean;
    showDotCursor: boolean;
    focusOnClick: boolean;
    background: string;

    disconnect(): void;
    sendCtrlAltDel(): void;
    clipboardPasteFrom(text: string): void;
    focus(options?: FocusOptions): void;
    blur(): void;

    addEventListener<K extends keyof RfbEventMap>(
      type: K,
      listener: (this: RFB, ev: RfbEventMap[K]) => void,
      options?: boolean | AddEventListenerOptions,
    ): void;
    addEventListener(
      type: string,
      listener: EventListenerOrEventListenerObject | null,
      options?: boolean | AddEventListenerOptions,
    ): void;
  }
}
