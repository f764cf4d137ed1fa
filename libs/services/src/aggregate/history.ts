import type { RecordedEvent } from '@cps/events';

/**
 * A service's state changes and operations, read from its events (the manager answers `get_history`
 * with it; the director uses it when no manager runs). The last `limit` of each.
 */
export const serviceHistory = (events: readonly RecordedEvent[], limit = 1000) => {
  const history = events.flatMap((e) =>
    e.type === 'ServiceStateChanged'
      ? [{ at: e.metadata.at, ...(e.data as { from: string; to: string; reason: string }) }]
      : [],
  );
  const operations = events.flatMap((e) =>
    e.type === 'OperationStarted' || e.type === 'OperationCompleted' || e.type === 'OperationFailed'
      ? [{ at: e.metadata.at, event: e.type, ...(e.data as { operationId: string; reason?: string }) }]
      : [],
  );
  return { history: history.slice(-limit), operations: operations.slice(-limit) };
};
