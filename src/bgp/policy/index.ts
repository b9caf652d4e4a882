/**
 * Routing policy engine (OpenConfig routing-policy model, kebab-case keys): the public surface.
 * `compilePolicies(cfg)` validates and compiles the `policies` config section into a
 * `PolicyBook`; `book.evaluate(names, route, defaultAccept)` runs a chain on one route.
 * Everything else in this folder is internal.
 */
export { ACCEPT_ALL, compilePolicies, PolicyBook, REJECT_ALL } from './book.ts';
export { PolicyConfigError } from './config-reader.ts';
export type { PolicyDependencies, PolicyResult, PolicyRoute, RouteType } from './types.ts';
