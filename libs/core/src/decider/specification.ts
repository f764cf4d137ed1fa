import type { Command, Decider, Message } from './decider.js';
import { fold, toArray } from './decider.js';

/**
 * Given/when/then for deciders, with no mocks:
 * `spec(d).given([e1]).when(cmd).then([e2])` or `.thenThrows(pred)`.
 */
export const DeciderSpecification = <C extends Command, E extends Message, S>(decider: Decider<C, E, S>) => ({
  given: (events: readonly E[]) => ({
    when: (command: C) => {
      const run = (): readonly E[] => toArray(decider.decide(command, fold(decider, events)));
      return {
        then: (expected: readonly E[]): void => {
          const actual = JSON.stringify(run());
          const wanted = JSON.stringify(expected);
          if (actual !== wanted) throw new Error(`expected events ${wanted}\n          got ${actual}`);
        },
        thenThrows: (check: (e: unknown) => boolean): void => {
          try {
            run();
          } catch (e) {
            if (!check(e)) throw new Error(`decider threw an unexpected error: ${String(e)}`, { cause: e });
            return;
          }
          throw new Error('expected the decider to throw');
        },
      };
    },
  }),
});
