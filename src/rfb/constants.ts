/** RFB wire constants. Sections refer to RFC 6143 unless marked rfbproto (the community spec). */

export const PROTOCOL_VERSION_LENGTH = 12; // §7.1.1 "RFB xxx.yyy\n"

/** Versions we actually speak, as the strings on the wire. */
export const RFB_VERSIONS = {
  '3.3': 'RFB 003.003\n',
  '3.7': 'RFB 003.007\n',
  '3.8': 'RFB 003.008\n',
} as const; // §7.1.1
export type RfbVersion = keyof typeof RFB_VERSIONS;

export const SECURITY_TYPE = {
  invalid: 0, // §7.1.2
  none: 1, // §7.2.1
  vncAuth: 2, // §7.2.2
  vencrypt: 19, // rfbproto "VeNCrypt"
} as const;

/** IANA RFB security type names, for messages that list what a server offered. */
export const SECURITY_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'Invalid',
  1: 'None',
  2: 'VncAuth',
  5: 'RA2',
  6: 'RA2ne',
  13: 'RA2_256',
  16: 'Tight',
  17: 'Ultra',
  18: 'TLS',
  19: 'VeNCrypt',
  20: 'SASL',
  21: 'MD5',
  22: 'xvp',
  30: 'ARD',
  129: 'RA2_256',
  130: 'RA2ne_256',
};

export const VENCRYPT_SUBTYPE = {
  plain: 256, // rfbproto VeNCrypt §"Plain"
  tlsNone: 257,
  tlsVnc: 258,
  tlsPlain: 259,
  x509None: 260,
  x509Vnc: 261,
  x509Plain: 262,
} as const;

export const VENCRYPT_SUBTYPE_NAMES: Readonly<Record<number, string>> = {
  256: 'Plain',
  257: 'TLSNone',
  258: 'TLSVnc',
  259: 'TLSPlain',
  260: 'X509None',
  261: 'X509Vnc',
  262: 'X509Plain',
  263: 'TLSSASL',
  264: 'X509SASL',
};

/** SecurityResult status words, §7.1.3. */
export const SECURITY_RESULT = { ok: 0, failed: 1, tooMany: 2 } as const;

export type Transport = 'plain' | 'tls-anon' | 'tls-x509';
export type InnerAuth = 'none' | 'vnc' | 'plain';

/**
 * The security choices an operator can name, in a preference list. Each is a top-level RFB type,
 * or VeNCrypt (19) with one subtype; `transport` says whether and how TLS wraps the rest.
 */
export const SECURITY_CHOICES = {
  none: { type: 1, subtype: null, transport: 'plain', inner: 'none' },
  vncauth: { type: 2, subtype: null, transport: 'plain', inner: 'vnc' },
  'vencrypt-plain': { type: 19, subtype: 256, transport: 'plain', inner: 'plain' },
  'vencrypt-tlsnone': { type: 19, subtype: 257, transport: 'tls-anon', inner: 'none' },
  'vencrypt-tlsvnc': { type: 19, subtype: 258, transport: 'tls-anon', inner: 'vnc' },
  'vencrypt-tlsplain': { type: 19, subtype: 259, transport: 'tls-anon', inner: 'plain' },
  'vencrypt-x509none': { type: 19, subtype: 260, transport: 'tls-x509', inner: 'none' },
  'vencrypt-x509vnc': { type: 19, subtype: 261, transport: 'tls-x509', inner: 'vnc' },
  'vencrypt-x509plain': { type: 19, subtype: 262, transport: 'tls-x509', inner: 'plain' },
} as const satisfies Record<string, { type: number; subtype: number | null; transport: Transport; inner: InnerAuth }>;
export type SecurityChoice = keyof typeof SECURITY_CHOICES;

export function isSecurityChoice(s: string): s is SecurityChoice {
  return Object.hasOwn(SECURITY_CHOICES, s);
}

/** Bounds on what a peer may make us wait for or buffer during the handshake. */
export const LIMITS = {
  /** Reason strings longer than this are not read (Nova uses the same bound). */
  maxReasonBytes: 256,
  /** Bytes buffered before the handshake completes; a peer sending more is misbehaving. */
  maxHandshakeBufferBytes: 64 * 1024,
  /** ServerInit desktop name; longer names are refused rather than awaited. */
  maxDesktopNameBytes: 4096,
  /** VNC Authentication uses only the first 8 password bytes (§7.2.2). */
  vncPasswordBytes: 8,
  /** Plain credentials we are willing to send (our own config, but keep them sane). */
  maxPlainCredentialBytes: 1024,
} as const;

/**
 * Client-to-server message types of the normal protocol phase (§7.5), with the rfbproto extensions
 * noVNC 1.7 sends (core/rfb.js `RFB.messages`) and QEMU audio. Each one's length follows from its
 * type and fields; nothing else can be framed, so anything else ends the session.
 */
export const CLIENT_MESSAGE = {
  setPixelFormat: 0, // §7.5.1
  setEncodings: 2, // §7.5.2
  framebufferUpdateRequest: 3, // §7.5.3
  keyEvent: 4, // §7.5.4
  pointerEvent: 5, // §7.5.5; rfbproto "ExtendedMouseButtons": 7 bytes when the mask's bit 7 is set
  clientCutText: 6, // §7.5.6; rfbproto "Extended Clipboard Pseudo-Encoding": a negative length
  enableContinuousUpdates: 150, // rfbproto "EnableContinuousUpdates"
  clientFence: 248, // rfbproto "ClientFence"
  xvp: 250, // rfbproto "xvp Client Message": shutdown, reboot, reset
  setDesktopSize: 251, // rfbproto "SetDesktopSize"
  qemu: 255, // rfbproto "QEMU Client Message"
} as const;

/** Sub-types of the QEMU client message (rfbproto "QEMU Client Message"). */
export const QEMU_CLIENT_SUBTYPE = {
  extendedKeyEvent: 0, // rfbproto "QEMU Extended Key Event Message"
  audio: 1, // rfbproto "QEMU Audio Client Message"
} as const;

/** QEMU audio operations (rfbproto "QEMU Audio Client Message"). */
export const QEMU_AUDIO_OPERATION = { enable: 0, disable: 1, setFormat: 2 } as const;

/** Pseudo-encodings the client message filter looks for in SetEncodings (S32 on the wire). */
export const PSEUDO_ENCODING = {
  extendedMouseButtons: -316, // rfbproto "ExtendedMouseButtons Pseudo-encoding"
  extendedClipboard: -1063131698, // 0xc0a1e5ce, rfbproto "Extended Clipboard Pseudo-Encoding"
} as const;

/** Action flags (top byte of the first U32) of an Extended Clipboard message (rfbproto). */
export const EXTENDED_CLIPBOARD_ACTION = {
  caps: 1 << 24,
  request: 1 << 25,
  peek: 1 << 26,
  notify: 1 << 27,
  provide: 1 << 28,
} as const;

/** Bounds on client messages after the handshake. */
export const CLIENT_MESSAGE_LIMITS = {
  /**
   * SetEncodings count (§7.5.2); more fails the session. noVNC 1.7 sends at most 27, TigerVNC about
   * 30; the U16 field allows 65 535.
   */
  maxEncodings: 256,
} as const;
