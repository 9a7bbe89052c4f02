import { createHash, X509Certificate } from 'node:crypto';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium, headless, with the background traffic this closed network refuses turned off. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** base64(SHA-256(SubjectPublicKeyInfo)), the form Chromium's --ignore-certificate-errors-spki-list takes. */
export function spkiPin(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/** Launches Chromium trusting exactly the given server certificate (by key), if any. */
export function launchChromium(trustCertPem?: string): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [...CHROMIUM_ARGS, ...(trustCertPem ? [`--ignore-certificate-errors-spki-list=${spkiPin(trustCertPem)}`] : [])],
  });
}

export type ConsoleView = { status: string; notice: string | null; colours: number; lit: number };

/**
 * Opens a console link in a new page and reads what a person would see: the status line, the
 * failure notice (if shown), and the canvas (distinct colours and bright pixels in a sample).
 */
export async function viewConsole(browser: Browser, url: string, opts: { ignoreHTTPSErrors?: boolean; timeoutMs?: number } = {}): Promise<ConsoleView> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 860 }, ignoreHTTPSErrors: opts.ignoreHTTPSErrors ?? false });
  try {
    await page.goto(url);
    // A locator, not waitForFunction: the page's strict CSP (no unsafe-eval) refuses string evaluation.
    await page.locator('#status-text').filter({ hasText: /Connected|Not connected|unavailable/i }).waitFor({ timeout: opts.timeoutMs ?? 20_000 });
    await page.waitForTimeout(800);
    // Page code as a string: this project's tsconfig has no DOM library.
    const { colours, lit } = await page.evaluate<{ colours: number; lit: number }>(`(() => {
      const c = document.querySelector('#screen canvas');
      if (!c || !c.width) return { colours: 0, lit: 0 };
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const seen = new Set();
      let lit = 0;
      for (let i = 0; i < d.length; i += 4 * 97) {
        seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        if (d[i] + d[i + 1] + d[i + 2] > 60) lit++;
      }
      return { colours: seen.size, lit };
    })()`);
    const status = (await page.textContent('#status-text')) ?? '';
    const notice = (await page.isVisible('#notice')) ? await page.textContent('#notice-text') : null;
    return { status, notice, colours, lit };
  } finally {
    await page.close();
  }
}
