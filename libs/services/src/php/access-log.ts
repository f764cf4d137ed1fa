/**
 * A node's request figures from its access log (lines of `$msec $status $request_time`, see
 * nginx.ts): requests per second, response-time percentiles and error rates over the last
 * `windowS` seconds. Kept as one histogram per second (log-spaced buckets, about 4% wide), so the
 * cost does not grow with the request rate. Pure apart from the clock it is given.
 */

const BUCKETS = 200;
/** Bucket i holds times below 0.1 ms × 1.04^(i+1) (0.1 ms .. ~25 min). */
const GROWTH = 1.04;
const FLOOR_MS = 0.1;
const bucketOf = (ms: number): number =>
  ms <= FLOOR_MS ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(ms / FLOOR_MS) / Math.log(GROWTH)));
const upperOf = (i: number): number => FLOOR_MS * GROWTH ** (i + 1);

interface Second {
  readonly at: number;
  count: number;
  e4: number;
  e5: number;
  readonly hist: Uint32Array;
}

export interface RequestFigures {
  readonly http_requests_per_s: number;
  readonly http_p50_ms: number;
  readonly http_p95_ms: number;
  readonly http_p99_ms: number;
  readonly http_4xx_per_s: number;
  readonly http_5xx_per_s: number;
  /** Requests counted since the agent started (a test's or a balancer's plain count). */
  readonly http_requests_total: number;
}

export class AccessLogStats {
  private readonly seconds: Second[] = [];
  private partial = '';
  private total = 0;

  constructor(private readonly windowS = 10) {}

  /** Takes a chunk of the log as it was read (lines may be cut anywhere). */
  push(chunk: Uint8Array | string): void {
    const text = this.partial + (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('latin1'));
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      this.line(text, start, nl);
      start = nl + 1;
    }
    this.partial = text.length - start > 256 ? '' : text.slice(start);
  }

  private line(text: string, from: number, to: number): void {
    const a = text.indexOf(' ', from);
    const b = a < 0 ? -1 : text.indexOf(' ', a + 1);
    if (a < 0 || b < 0 || b > to) return;
    const at = Number(text.slice(from, a));
    const status = Number(text.slice(a + 1, b));
    const seconds = Number(text.slice(b + 1, to));
    if (!Number.isFinite(at) || !Number.isFinite(status) || !Number.isFinite(seconds)) return;
    const s = this.second(Math.floor(at));
    s.count++;
    if (status >= 500) s.e5++;
    else if (status >= 400) s.e4++;
    s.hist[bucketOf(seconds * 1000)]!++;
    this.total++;
  }

  private second(at: number): Second {
    const last = this.seconds[this.seconds.length - 1];
    if (last && last.at === at) return last;
    const found = this.seconds.find((s) => s.at === at);
    if (found) return found;
    const s: Second = { at, count: 0, e4: 0, e5: 0, hist: new Uint32Array(BUCKETS) };
    this.seconds.push(s);
    this.seconds.sort((x, y) => x.at - y.at);
    while (this.seconds.length > this.windowS + 5) this.seconds.shift();
    return s;
  }

  /** The figures of the `windowS` whole seconds before `nowMs` (nginx writes lines up to 1 s late). */
  figures(nowMs: number): RequestFigures {
    const end = Math.floor(nowMs / 1000) - 1;
    const from = end - this.windowS;
    const hist = new Uint32Array(BUCKETS);
    let count = 0;
    let e4 = 0;
    let e5 = 0;
    for (const s of this.seconds) {
      if (s.at <= from || s.at > end) continue;
      count += s.count;
      e4 += s.e4;
      e5 += s.e5;
      for (let i = 0; i < BUCKETS; i++) hist[i]! += s.hist[i]!;
    }
    const pct = (p: number): number => {
      if (count === 0) return 0;
      const rank = Math.ceil(count * p);
      let seen = 0;
      for (let i = 0; i < BUCKETS; i++) {
        seen += hist[i]!;
        if (seen >= rank) return Math.round(upperOf(i) * 100) / 100;
      }
      return Math.round(upperOf(BUCKETS - 1));
    };
    const per = (n: number): number => Math.round((n / this.windowS) * 100) / 100;
    return {
      http_requests_per_s: per(count),
      http_p50_ms: pct(0.5),
      http_p95_ms: pct(0.95),
      http_p99_ms: pct(0.99),
      http_4xx_per_s: per(e4),
      http_5xx_per_s: per(e5),
      http_requests_total: this.total,
    };
  }
}
