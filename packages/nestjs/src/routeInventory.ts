import type { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { QuiesceEngine } from '@quiesce/core';
import { type ClassificationRule, createClassifier } from '@quiesce/core';
import type { GraphqlPolicies } from './graphqlOperation.js';
import { annotationOf, routePolicy } from './policyDecorators.js';
import { declaredMethod, describeRoute, type RouteInfo } from './routeInfo.js';

/** `@nestjs/graphql`'s metadata keys on resolver methods (read by name: it is an optional peer). */
const RESOLVER_TYPE_METADATA = 'graphql:resolver_type';
const RESOLVER_NAME_METADATA = 'graphql:resolver_name';
const PATH_METADATA = 'path';

export interface ControllerRoute {
  controller: Function;
  key: string;
  handler: Function;
  /** `POST`, or `ALL` for `@All()`. */
  method: string;
  route: RouteInfo;
}

/** Every route handler of the application's controllers; `prefix` is mount path + global prefix. */
export function controllerRoutes(
  discovery: DiscoveryService,
  scanner: MetadataScanner,
  prefix: string,
): ControllerRoute[] {
  const out: ControllerRoute[] = [];
  for (const wrapper of discovery.getControllers()) {
    const controller = wrapper.metatype as Function | undefined;
    if (!controller?.prototype) continue;
    for (const key of scanner.getAllMethodNames(controller.prototype)) {
      const handler = controller.prototype[key] as Function;
      if (Reflect.getMetadata(PATH_METADATA, handler) === undefined) continue;
      const method = declaredMethod(handler) ?? 'ALL';
      out.push({
        controller,
        key,
        handler,
        method,
        route: describeRoute(handler, controller, method, prefix),
      });
    }
  }
  return out;
}

/**
 * Walks the application's controllers and resolvers once at bootstrap: reports every write
 * surface (and every handler someone gave a policy) to `engine.inventory()`, and collects the
 * mutation policies that the guard needs to refuse a GraphQL mutation whole.
 */
export function scanApplication(
  engine: QuiesceEngine,
  discovery: DiscoveryService,
  scanner: MetadataScanner,
  /** Mount path + global prefix. */
  prefix: string,
  report: boolean,
  rules: readonly ClassificationRule[],
  /** Where the app is mounted: rules are relative to it. */
  mount = '',
): GraphqlPolicies {
  const policies: GraphqlPolicies = new Map();
  // Classified as the engine would: annotation, then the app's rules, then the surface default.
  const classify = createClassifier(rules);

  for (const { controller, key, method, route } of controllerRoutes(discovery, scanner, prefix)) {
    const { classification, policy, explicit } = classify({
      surface: 'http',
      name: route.name,
      // `@All()` takes writes too.
      method: method === 'ALL' ? 'POST' : method,
      path: route.path,
      ...(mount ? { mount } : {}),
      annotation: route.annotation,
    });
    if (!report || (classification === 'read' && !explicit)) continue;
    engine.register({
      surface: 'http',
      name: route.name,
      method,
      path: route.path,
      classification,
      policy,
      explicit,
      source: 'nestjs',
      details: { controller: controller.name, handler: key },
    });
  }

  for (const wrapper of discovery.getProviders()) {
    const resolver = wrapper.metatype as Function | undefined;
    if (!resolver?.prototype || wrapper.isNotMetatype) continue;
    for (const key of scanner.getAllMethodNames(resolver.prototype)) {
      const handler = resolver.prototype[key] as Function;
      const type: string | undefined = Reflect.getMetadata(RESOLVER_TYPE_METADATA, handler);
      if (type !== 'Mutation' && type !== 'Query' && type !== 'Subscription') continue;
      const field: string = Reflect.getMetadata(RESOLVER_NAME_METADATA, handler) ?? key;
      const operationType = type.toLowerCase() as 'query' | 'mutation' | 'subscription';
      const policy = routePolicy(handler, resolver);
      if (operationType === 'mutation') policies.set(field, policy);
      const annotation = annotationOf(policy, operationType !== 'mutation');
      const c = classify({
        surface: 'graphql',
        name: `${operationType} ${field}`,
        operationType,
        annotation,
      });
      if (!report || (c.classification === 'read' && !c.explicit)) continue;
      engine.register({
        surface: 'graphql',
        name: `${operationType} ${field}`,
        classification: c.classification,
        policy: c.policy,
        explicit: c.explicit,
        source: 'nestjs',
        details: { resolver: resolver.name, handler: key },
      });
    }
  }
  return policies;
}
