export { Director, type DirectorOptions } from './director.js';
export { routes, type Routes } from './api/routes.js';
export { buildOpenApi } from './api/openapi.js';
