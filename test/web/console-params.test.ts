import { describe, expect, it } from 'vitest';
import { ConsoleLinkError, readConsoleSettings, scrubConsoleUrl } from '../../web/src/params.js';
import { decodeRfbText } from '../../web/src/text.js';

const NODE = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123';
const IRONIC_TOKEN = '9J3q4xJm7Qy0nB2pK5vW8sZ1aD6fH4gL0cE7rT3uY2i';
const NOVA_TOKEN = 'daae261f-474d-4cae-8f6a-1865278ed8c9';
// Ironic `GET /v1/nodes/{id}/states/console` console_info.url (ironic/common/vnc.py builds it).
const IRONIC_LINK = `http://192.0.2.10:6090/vnc_lite.html?path=websockify%3Fnode%3D${NODE}%26token%3D${IRONIC_TOKEN}`;
// Nova os-remote-consoles response, `[vnc] novncproxy_base_url` left at its vnc_auto.html default.
const NOVA_LINK = `http://127.0.0.1:6080/vnc_auto.html?path=%3Ftoken%3D${NOVA_TOKEN}`;

const url = (href: string): string => readConsoleSettings(href).url;

describe('readConsoleSettings: WebSocket URL', () => {
  it('follows an Ironic graphical-console link to /websockify with node and token', () => {
    expect(url(IRONIC_LINK)).toBe(`ws://192.0.2.10:6090/websockify?node=${NODE}&token=${IRONIC_TOKEN}`);
  });

  it('keeps a Nova `path=?token=…` on the page path, as noVNC vnc.html does', () => {
    expect(url(NOVA_LINK)).toBe(`ws://127.0.0.1:6080/vnc_auto.html?token=${NOVA_TOKEN}`);
  });

  it('resolves `path` relative to the page, including under a prefix', () => {
    expect(url('https://cloud.example.org/novnc/vnc.html?path=websockify%3Ftoken%3Dt')).toBe(
      'wss://cloud.example.org/novnc/websockify?token=t',
    );
    expect(url('https://cloud.example.org/novnc/vnc.html?path=/ws%3Ftoken%3Dt')).toBe('wss://cloud.example.org/ws?token=t');
  });

  it('defaults `path` to websockify and appends a top-level `token` (noVNC 0.x links)', () => {
    expect(url('http://h:6080/vnc_auto.html?token=abc')).toBe('ws://h:6080/websockify?token=abc');
    expect(url('http://h/vnc.html?path=websockify%3Fnode%3Dn&token=abc')).toBe('ws://h/websockify?node=n&token=abc');
  });

  it('does not add a second token when `path` has one', () => {
    expect(url('http://h/vnc.html?path=websockify%3Ftoken%3Dfrom-path&token=top')).toBe('ws://h/websockify?token=from-path');
  });

  it('keeps `+` and `/` in a token (decodeURIComponent, not form decoding)', () => {
    expect(url('http://h/vnc.html?token=a+b/c')).toBe('ws://h/websockify?token=a%2Bb%2Fc');
  });

  it('uses wss on https pages and honours `encrypt` either way', () => {
    expect(url('https://h/vnc.html')).toBe('wss://h/websockify');
    expect(url('https://h/vnc.html?encrypt=0')).toBe('ws://h/websockify');
    expect(url('http://h/vnc.html?encrypt=1')).toBe('wss://h/websockify');
    expect(url('http://h/vnc.html?encrypt=true')).toBe('wss://h/websockify');
  });

  it('honours `host` and `port`; with a host, `path` is relative to its root (noVNC app/ui.js)', () => {
    expect(url('https://h/novnc/vnc.html?host=console.example.org&port=6443&path=websockify')).toBe(
      'wss://console.example.org:6443/websockify',
    );
    expect(url('http://h/vnc.html?host=::1&port=6080')).toBe('ws://[::1]:6080/websockify');
    expect(url('http://h:8080/vnc.html?port=6080')).toBe('ws://h:6080/websockify');
    expect(url('http://h/vnc.html?host=other&path=%3Ftoken%3Dt')).toBe('ws://other/?token=t');
  });

  it('takes parameters from the fragment before the query', () => {
    expect(url('http://h/vnc.html?path=a#path=b%3Ftoken%3Dt')).toBe('ws://h/b?token=t');
  });

  it('refuses links that would connect somewhere the page did not intend', () => {
    for (const href of [
      'http://h/vnc.html?path=//evil.example/x',
      'http://h/vnc.html?path=ws://evil.example/',
      'http://h/vnc.html?host=evil.example/x',
      'http://h/vnc.html?host=user@evil.example',
      'http://h/vnc.html?host=a:b:c:d:e:f:g:h:i',
      'http://h/vnc.html?port=0',
      'http://h/vnc.html?port=65536',
      'http://h/vnc.html?port=80x',
    ]) {
      expect(() => readConsoleSettings(href), href).toThrow(ConsoleLinkError);
    }
  });

  it('keeps a path starting with // on the host named by `host`', () => {
    expect(url('http://h/vnc.html?host=c.example&path=//evil.example/x')).toBe('ws://c.example///evil.example/x');
  });
});

describe('readConsoleSettings: options', () => {
  it('has console-friendly defaults', () => {
    expect(readConsoleSettings('http://h/vnc.html')).toEqual({
      url: 'ws://h/websockify',
      autoconnect: true,
      resize: 'scale',
      viewOnly: false,
      shared: true,
      reconnect: false,
      reconnectDelayMs: 5000,
      showDot: false,
    });
  });

  it('reads noVNC parameter names and values', () => {
    const s = readConsoleSettings(
      'http://h/vnc.html?autoconnect=false&resize=remote&view_only=1&shared=0&reconnect=true&reconnect_delay=250&show_dot=yes',
    );
    expect(s).toMatchObject({ autoconnect: false, resize: 'remote', viewOnly: true, shared: false, reconnect: true, reconnectDelayMs: 250, showDot: true });
  });

  it('falls back on unknown values and bounds the reconnect delay', () => {
    expect(readConsoleSettings('http://h/vnc.html?resize=zoom&view_only=maybe').resize).toBe('scale');
    expect(readConsoleSettings('http://h/vnc.html?view_only=maybe').viewOnly).toBe(false);
    expect(readConsoleSettings('http://h/vnc.html?reconnect_delay=0').reconnectDelayMs).toBe(100);
    expect(readConsoleSettings('http://h/vnc.html?reconnect_delay=99999999').reconnectDelayMs).toBe(600_000);
    expect(readConsoleSettings('http://h/vnc.html?reconnect_delay=-5').reconnectDelayMs).toBe(5000);
  });

  it('accepts a malformed percent escape literally instead of failing', () => {
    expect(url('http://h/vnc.html?token=50%zz')).toBe('ws://h/websockify?token=50%25zz');
  });
});

describe('scrubConsoleUrl', () => {
  it('drops the token from an Ironic link but keeps the node', () => {
    expect(scrubConsoleUrl(IRONIC_LINK)).toBe(`http://192.0.2.10:6090/vnc_lite.html?path=websockify%3Fnode%3D${NODE}`);
  });

  it('drops a Nova `path` that held nothing but the token', () => {
    expect(scrubConsoleUrl(NOVA_LINK)).toBe('http://127.0.0.1:6080/vnc_auto.html');
  });

  it('drops `token` and `password` from query and fragment, keeping other parameters as written', () => {
    expect(scrubConsoleUrl('http://h/vnc.html?token=a&resize=scale&x=%7E#password=p&view_only=1')).toBe(
      'http://h/vnc.html?resize=scale&x=%7E#view_only=1',
    );
    expect(scrubConsoleUrl('http://h/vnc.html?path=websockify%3Ftoken%3Da%26node%3Dn')).toBe(
      'http://h/vnc.html?path=websockify%3Fnode%3Dn',
    );
  });

  it('returns the URL untouched when it holds no secret', () => {
    const href = 'http://h/vnc.html?path=websockify&resize=remote#view_only=1';
    expect(scrubConsoleUrl(href)).toBe(href);
  });

  it('never leaves the token anywhere in the result', () => {
    for (const href of [IRONIC_LINK, NOVA_LINK, `http://h/vnc.html#token=${NOVA_TOKEN}`, `http://h/vnc.html?token=${NOVA_TOKEN}&token=${NOVA_TOKEN}`]) {
      expect(scrubConsoleUrl(href)).not.toMatch(new RegExp(`${NOVA_TOKEN}|${IRONIC_TOKEN}`));
    }
  });
});

describe('decodeRfbText', () => {
  const asNoVncReadsIt = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

  it('recovers a UTF-8 reason that noVNC read one byte per character', () => {
    const reason = 'This console link has expired or was already used — request a new one';
    expect(decodeRfbText(asNoVncReadsIt(reason))).toBe(reason);
  });

  it('keeps Latin-1 text that is not valid UTF-8', () => {
    expect(decodeRfbText('caf\u00e9')).toBe('caf\u00e9');
  });

  it('drops control characters and bounds the length', () => {
    expect(decodeRfbText('\u0000bad\u001b[31m reason \r')).toBe('bad[31m reason');
    const shown = decodeRfbText('x'.repeat(5000));
    expect(shown).toHaveLength(512);
    expect(shown.endsWith('…')).toBe(true);
  });
});
