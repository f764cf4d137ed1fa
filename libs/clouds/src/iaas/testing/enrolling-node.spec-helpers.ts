/**
 * A cloud node's first steps, as the program a stand-in machine starts (run from source with
 * `sourceCommand`): enrolls with its one-time token and joins the bus (`joinBus`), then asks
 * `PING_SUBJECT` once, with its own address, and stays on the bus until its machine is halted.
 */
import { joinBus, requireEnv } from '@cps/platform';

const { bus } = await joinBus(`agent:${requireEnv('CPS_NODE_ID')}`);
const reply = await bus.connection.request(requireEnv('PING_SUBJECT'), requireEnv('CPS_NODE_ADDRESS'), {
  timeout: 5_000,
});
console.log(`joined the bus: ${reply.string()}`);
