import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The director's Prometheus metrics (served at `/metrics`). */
export class HttpMetrics {
  readonly registry = new Registry();
  private readonly duration = new Histogram({
    name: 'cps_http_request_duration_seconds',
    help: 'HTTP requests by route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly events = new Counter({
    name: 'cps_director_events_projected_total',
    help: 'Events the read models have applied',
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: 'cps_director_leader',
    help: '1 while this director holds the leader lease',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'cps_director_' });
  }

  observe(method: string, route: string, status: number, ms: number): void {
    this.duration.observe({ method, route, status: String(status) }, ms / 1000);
  }
}
