import type { HttpMetrics } from '../api/metrics.js';

/** The platform's own routes: liveness, readiness, metrics, the OpenAPI document. */
export class Platform {
  constructor(
    readonly metrics: HttpMetrics,
    private readonly o: {
      readonly openapi: () => Record<string, unknown>;
      readonly ready: () => Record<string, string>;
    },
  ) {}

  health() {
    return { status: 'ok' as const, checks: { process: 'ok' } };
  }

  ready() {
    const checks = this.o.ready();
    const ok = Object.values(checks).every((v) => v === 'ok');
    return { status: ok ? ('ok' as const) : ('starting' as const), checks };
  }

  openapi(): Record<string, unknown> {
    return this.o.openapi();
  }
}
