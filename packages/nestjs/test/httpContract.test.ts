import type { IncomingHttpHeaders } from 'node:http';
import { Controller, Delete, Get, HttpCode, Module, Patch, Post, Put, Req, type Type } from '@nestjs/common';
import {
  type ContractApp,
  type ContractAppInput,
  type ContractRoute,
  runHttpContractSuite,
} from '@quiesce/testkit';
import {
  AllowDuringReadOnly,
  DropDuringReadOnly,
  QueueDuringReadOnly,
  type QueueDuringReadOnlyOptions,
  Writes,
} from '../src/policyDecorators.js';
import { QuiesceModule } from '../src/quiesceModule.js';
import { PLATFORMS, type Platform, startNestApp } from './testApp.js';

const VERBS = { GET: Get, POST: Post, PUT: Put, PATCH: Patch, DELETE: Delete } as const;

function policyDecorator(route: ContractRoute): MethodDecorator | undefined {
  const p = route.policy;
  if (!p) return undefined;
  switch (p.kind) {
    case 'allow':
      return AllowDuringReadOnly();
    case 'drop':
      return DropDuringReadOnly();
    case 'writes':
      return Writes();
    case 'queue': {
      const key = p.idempotencyKey;
      const options: QueueDuringReadOnlyOptions = { name: p.name };
      if (key === 'header' || key === 'content') options.idempotencyKey = key;
      else if (typeof key === 'function') {
        options.idempotencyKey = (req: { headers: IncomingHttpHeaders; body: unknown }) =>
          key({ headers: req.headers, body: req.body });
      }
      return QueueDuringReadOnly(options);
    }
  }
}

/** A Nest controller with the suite's routes, one handler each, decorated as an app would. */
function contractController(routes: ContractRoute[]): Type {
  class ContractController {}
  const proto = ContractController.prototype as unknown as Record<string, unknown>;
  routes.forEach((route, i) => {
    const key = `route${i}`;
    proto[key] = (req: {
      method: string;
      url: string;
      originalUrl?: string;
      headers: IncomingHttpHeaders;
      body?: unknown;
    }) =>
      route.handle({
        method: req.method,
        path: req.originalUrl ?? req.url,
        headers: req.headers,
        body: req.body,
      });
    Req()(proto, key, 0);
    const decorators: MethodDecorator[] = [VERBS[route.method](route.path), HttpCode(200)];
    const policy = policyDecorator(route);
    if (policy) decorators.push(policy);
    Reflect.decorate(decorators, proto, key, Object.getOwnPropertyDescriptor(proto, key));
  });
  Reflect.decorate([Controller()], ContractController);
  return ContractController;
}

function buildApp(platform: Platform) {
  return async ({ engine, routes, cors }: ContractAppInput): Promise<ContractApp> => {
    @Module({
      imports: [QuiesceModule.forRoot({ engine, globalGuard: true })],
      controllers: [contractController(routes)],
    })
    class ContractModule {}
    const running = await startNestApp(ContractModule, platform, (app) => {
      app.enableCors(cors);
    });
    return { url: running.url, close: running.close };
  };
}

for (const platform of PLATFORMS) {
  runHttpContractSuite({ name: `nestjs (${platform})`, buildApp: buildApp(platform) });
}
