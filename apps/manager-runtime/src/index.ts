/** What other parts of the platform need of the manager runtime: the service aggregate's contract. */
export { serviceEvents, type ServiceEvent } from './service/events.js';
export {
  serviceDecider,
  evolveService,
  type ServiceState,
  type ServiceCommand,
} from './service/service-decider.js';
export { serviceHistory } from './service/history.js';
