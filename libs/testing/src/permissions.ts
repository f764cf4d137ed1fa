import type { NatsConnection } from '@nats-io/transport-node';

/**
 * Collects the permission violations a connection reports (the server answers them
 * asynchronously; the connection stays up).
 */
export class ViolationLog {
  readonly messages: string[] = [];
  private constructor(nc: NatsConnection) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'error') this.messages.push(s.error.message);
      }
    })();
  }

  static watch(nc: NatsConnection): ViolationLog {
    return new ViolationLog(nc);
  }

  /** Waits until a violation for `kind` on `subject` is reported (or fails after `ms`). */
  async expect(kind: 'Publish' | 'Subscription', subject: string, ms = 2_000): Promise<void> {
    const wanted = `Permissions Violation for ${kind} to "${subject}"`;
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (this.messages.some((m) => m.includes(wanted))) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no violation "${wanted}"; seen: ${JSON.stringify(this.messages)}`);
  }
}

/** Subscribes to `subject` and resolves with the server's refusal, or undefined if it was allowed. */
export const trySubscribe = async (
  nc: NatsConnection,
  subject: string,
  ms = 1_000,
): Promise<Error | undefined> => {
  const sub = nc.subscribe(subject);
  const r = await Promise.race([
    sub.closed.then((e) => e ?? undefined),
    new Promise<'open'>((res) => setTimeout(() => res('open'), ms)),
  ]);
  if (r === 'open') {
    sub.unsubscribe();
    return undefined;
  }
  return r;
};
