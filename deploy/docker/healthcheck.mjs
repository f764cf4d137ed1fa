// Container healthcheck (the image has no curl): exits 0 when GET <url> answers 2xx within 3 s.
// Usage: node healthcheck.mjs <url> [ca-file]   (the CA verifies an https URL)
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

const [url, caFile] = process.argv.slice(2);
if (!url) {
  console.error('usage: healthcheck.mjs <url> [ca-file]');
  process.exit(2);
}
const secure = url.startsWith('https:');
const options = secure && caFile ? { ca: readFileSync(caFile) } : {};
const req = (secure ? https : http).get(url, { ...options, timeout: 3000 }, (res) => {
  res.resume();
  process.exit(res.statusCode >= 200 && res.statusCode < 300 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (e) => {
  console.error(`unhealthy: ${e.message}`);
  process.exit(1);
});
