/** NestJS over the cps bus: the microservice transport, and the app every node runtime is served by. */
export {
  CpsBusContext,
  CpsBusTransport,
  CpsRpcExceptionFilter,
  type CpsBusTransportOptions,
} from './transport.js';
export { createBusApp, type BusAppOptions, type ServedCommand } from './bus-app.js';
