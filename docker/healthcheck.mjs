// Container health check: GET /readyz on vncgate's own listener. Exit 0 when it answers 200.
// The address is VNCGATE_HEALTHCHECK_URL, default https://127.0.0.1:6080/readyz (the image's
// listen address). The certificate is not checked: this only asks the local process whether it
// is ready, over the same listener browsers use: 503 while draining; a token store outage only
// with health.readinessChecksTokenStore (README "Shutdown and readiness").
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

const url = new URL(process.env.VNCGATE_HEALTHCHECK_URL ?? 'https://127.0.0.1:6080/readyz');
const request = url.protocol === 'http:' ? httpRequest : httpsRequest;
const req = request(url, { method: 'GET', rejectUnauthorized: false, timeout: 2000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', () => process.exit(1));
req.end();
