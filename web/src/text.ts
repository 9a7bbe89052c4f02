/** Longest server-supplied text the page shows; the proxy already caps reasons at 256 bytes. */
const MAX_SHOWN_CHARS = 512;

/**
 * noVNC 1.7 reads the SecurityResult reason byte by byte into a string (`Websock.rQshiftStr`,
 * one char per byte), but RFB 3.8 reasons from our proxy are UTF-8 — "expired or was already used
 * — request a new one" has an em dash. Re-decode as UTF-8 when the bytes are valid UTF-8, else
 * keep the Latin-1 reading (older servers send plain ASCII/Latin-1). Control characters are
 * dropped and the result is trimmed and bounded, since it is peer input shown to a person.
 */
export function decodeRfbText(text: string): string {
  let decoded = text;
  if (!/[^\x00-\xff]/.test(text)) {
    const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0));
    try {
      decoded = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      decoded = text;
    }
  }
  return cleanText(decoded);
}

/** Peer-supplied text that is already Unicode (noVNC decodes desktop names): clean and bound it. */
export function cleanText(text: string): string {
  const clean = text.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '').trim();
  return clean.length > MAX_SHOWN_CHARS ? `${clean.slice(0, MAX_SHOWN_CHARS - 1)}…` : clean;
}
