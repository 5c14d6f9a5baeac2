// Holds STREAMS tenant-wide event streams (GET /api/events with the bearer KEY) open against
// BASE. Prints "open N" once every stream answered 200 and sent its first bytes; on SIGUSR1
// prints "still-open N" (streams not ended by the server) and closes them all.
import http from 'node:http';

const { BASE, KEY } = process.env;
const STREAMS = Number(process.env.STREAMS ?? 1000);
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const requests = [];
let ready = 0;
let ended = 0;
let failed = 0;

const reported = () => {
  if (ready + failed === STREAMS) {
    if (failed) { console.error(`${failed} streams failed`); process.exit(1); }
    console.log(`open ${ready}`);
  }
};

for (let i = 0; i < STREAMS; i++) {
  const req = http.get(`${BASE}/api/events`, { agent, headers: { Authorization: `Bearer ${KEY}`, Accept: 'text/event-stream' } }, (res) => {
    if (res.statusCode !== 200) { failed += 1; res.resume(); reported(); return; }
    let first = true;
    res.on('data', () => { if (first) { first = false; ready += 1; reported(); } });
    res.on('end', () => { ended += 1; });
    res.on('error', () => {});
  });
  req.on('error', (e) => { if (!req.destroyed || !closing) { failed += 1; console.error(e.message); reported(); } });
  requests.push(req);
}

let closing = false;
process.on('SIGUSR1', () => {
  closing = true;
  console.log(`still-open ${ready - ended}`);
  for (const r of requests) r.destroy();
  process.exit(0);
});
setInterval(() => {}, 1 << 30);
