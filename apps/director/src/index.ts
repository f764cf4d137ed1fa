export { Director, type DirectorOptions } from './director.js';
export { allRoutes } from './features.js';
export { buildOpenApi } from './api/openapi.js';
