/**
 * X11 keysyms (RFC 6143 §7.5.4 refers to <X11/keysymdef.h>): the few the demo treats specially,
 * and names for the keys a person checking a console typically presses.
 */
export const KEYSYM = {
  BackSpace: 0xff08,
  Tab: 0xff09,
  Return: 0xff0d,
  KP_Enter: 0xff8d,
} as const;

const NAMES: Readonly<Record<number, string>> = {
  0xff08: 'BackSpace',
  0xff09: 'Tab',
  0xff0d: 'Return',
  0xff13: 'Pause',
  0xff14: 'Scroll_Lock',
  0xff15: 'Sys_Req',
  0xff1b: 'Escape',
  0xff50: 'Home',
  0xff51: 'Left',
  0xff52: 'Up',
  0xff53: 'Right',
  0xff54: 'Down',
  0xff55: 'Page_Up',
  0xff56: 'Page_Down',
  0xff57: 'End',
  0xff61: 'Print',
  0xff63: 'Insert',
  0xff67: 'Menu',
  0xff7f: 'Num_Lock',
  0xff8d: 'KP_Enter',
  0xffe1: 'Shift_L',
  0xffe2: 'Shift_R',
  0xffe3: 'Control_L',
  0xffe4: 'Control_R',
  0xffe5: 'Caps_Lock',
  0xffe7: 'Meta_L',
  0xffe8: 'Meta_R',
  0xffe9: 'Alt_L',
  0xffea: 'Alt_R',
  0xffeb: 'Super_L',
  0xffec: 'Super_R',
  0xffff: 'Delete',
  0xfe03: 'ISO_Level3_Shift',
};

/** Keypad keysyms 0xffaa–0xffb9 (KP_Multiply … KP_9) type these characters. */
const KEYPAD = '*+,-./0123456789';

/** The character a keysym types, or null for keys that type none (modifiers, arrows, F-keys…). */
export function keysymChar(keysym: number): string | null {
  if (keysym >= 0x20 && keysym <= 0x7e) return String.fromCharCode(keysym); // ASCII
  if (keysym >= 0xa0 && keysym <= 0xff) return String.fromCharCode(keysym); // Latin-1
  if (keysym >= 0xffaa && keysym <= 0xffb9) return KEYPAD[keysym - 0xffaa] ?? null;
  if (keysym === 0xff80) return ' '; // KP_Space
  if (keysym === 0xffbd) return '='; // KP_Equal
  // Unicode keysyms: 0x01000000 + code point (keysymdef.h, "Unicode characters").
  if (keysym >= 0x01000100 && keysym <= 0x0110ffff) {
    const cp = keysym - 0x01000000;
    if (cp < 0xd800 || cp > 0xdfff) return String.fromCodePoint(cp);
  }
  return null;
}

/** A short human name: the X11 name for well-known keys, 'x' for printable ones, else hex. */
export function keysymName(keysym: number): string {
  const named = NAMES[keysym];
  if (named !== undefined) return named;
  if (keysym >= 0xffbe && keysym <= 0xffc9) return `F${keysym - 0xffbe + 1}`;
  const ch = keysymChar(keysym);
  if (ch !== null) return `'${ch}'`;
  return `0x${keysym.toString(16).padStart(4, '0')}`;
}
