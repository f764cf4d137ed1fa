// Runs autocannon in its own process (so it does not share the event loop of the servers it
// measures) and prints its result as JSON. Options come as one JSON argument; `uniqueName` makes
// every request body `{"name": "<prefix>-<n>"}` with a fresh n (POST /v1/applications needs unique names).
import autocannon from 'autocannon';

const o = JSON.parse(process.argv[2]);
let n = 0;
const requests = o.uniqueName
  ? [{ setupRequest: (req) => ({ ...req, body: JSON.stringify({ name: `${o.uniqueName}-${n++}` }) }) }]
  : undefined;
autocannon(
  {
    url: o.url,
    method: o.method ?? 'GET',
    headers: o.headers ?? {},
    ...(o.body ? { body: o.body } : {}),
    ...(requests ? { requests } : {}),
    connections: o.connections ?? 20,
    duration: o.seconds,
    overallRate: o.overallRate,
  },
  (err, r) => {
    if (err) {
      console.error(err);
      process.exit(1);
    }
    process.stdout.write(JSON.stringify(r));
  },
);
