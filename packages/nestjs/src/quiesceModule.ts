import {
  type DynamicModule,
  Global,
  Inject,
  Injectable,
  Logger,
  Module,
  type ModuleMetadata,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleInit,
  Optional,
  type Provider,
} from '@nestjs/common';
import {
  APP_FILTER,
  APP_GUARD,
  ApplicationConfig,
  DiscoveryModule,
  DiscoveryService,
  HttpAdapterHost,
  MetadataScanner,
} from '@nestjs/core';
import { createQuiesce, type QuiesceEngine, QuiesceError, type QuiesceOptions } from '@quiesce/core';
import { HttpEnforcer } from '@quiesce/core/http';
import { installEarlyDecision } from './earlyDecision.js';
import { QuiesceResponseFilter } from './quiesceResponseFilter.js';
import { ReadOnlyGuard } from './readOnlyGuard.js';
import { joinPath } from './routeInfo.js';
import { scanApplication } from './routeInventory.js';
import { QUIESCE, QUIESCE_MODULE_OPTIONS, type ResolvedModuleOptions } from './tokens.js';

export interface QuiesceNestOptions {
  /**
   * Who is acting, from the platform request (Express `req` or Fastify request): used by the
   * bypass principal predicate and recorded on queued write intents.
   */
  principal?: (request: any) => string | undefined;
  /** Report every controller handler and GraphQL mutation with its policy to `engine.inventory()`. @default true */
  inventory?: boolean;
  /** Register {@link ReadOnlyGuard} for every route and resolver (as `APP_GUARD`). @default false */
  globalGuard?: boolean;
  /**
   * Decide unsafe requests to guarded routes during a window before the platform reads their body
   * (Express: right before Nest's body parsers; Fastify: a `preParsing` hook), so a refused upload
   * is never read. Works for apps from `NestFactory.create()`; elsewhere the guard decides, after
   * the body was read. @default true
   */
  decideBeforeBody?: boolean;
  /**
   * The path this Nest app is mounted under in an outer server (`outer.use('/nest', nestInstance)`),
   * which Nest cannot see: prefixed (before the global prefix) to every route's path and name, in
   * `engine.inventory()` and in the operations the guard decides, so both say the path a client
   * calls (`POST /nest/orders/:id`). @default ''
   */
  mountPath?: string;
}

/**
 * Either bring an engine (`engine`, which you start and close), or give core's options and the
 * module creates the engine, starts it at init and closes it on application shutdown.
 */
export type QuiesceModuleOptions = QuiesceNestOptions &
  ({ engine: QuiesceEngine } | (QuiesceOptions & { engine?: never }));

export interface QuiesceModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory: (...args: any[]) => QuiesceModuleOptions | Promise<QuiesceModuleOptions>;
  inject?: any[];
  /** Register {@link ReadOnlyGuard} for every route and resolver (as `APP_GUARD`). @default false */
  globalGuard?: boolean;
}

const invalid = (field: string, message: string) =>
  new QuiesceError('INVALID_INPUT', `QuiesceModule: options.${field} ${message}`, { field });

/** `/nest/` → `/nest`; `/` → `''`. */
function normalizeMountPath(path: string): string {
  const joined = joinPath(path);
  return joined === '/' ? '' : joined;
}

const nestLogger = new Logger('QuiesceModule');

function resolveOptions(options: QuiesceModuleOptions): ResolvedModuleOptions {
  if (options === null || typeof options !== 'object') {
    throw new QuiesceError('INVALID_INPUT', 'QuiesceModule: options must be an object', { field: 'options' });
  }
  const { principal, inventory, globalGuard, decideBeforeBody, mountPath, engine, ...core } =
    options as QuiesceNestOptions & { engine?: QuiesceEngine } & QuiesceOptions;
  if (principal !== undefined && typeof principal !== 'function') {
    throw invalid('principal', 'must be a function of the request');
  }
  for (const [field, value] of Object.entries({ inventory, globalGuard, decideBeforeBody })) {
    if (value !== undefined && typeof value !== 'boolean') throw invalid(field, 'must be a boolean');
  }
  if (mountPath !== undefined && (typeof mountPath !== 'string' || !mountPath.startsWith('/'))) {
    throw invalid('mountPath', 'must be a path starting with "/" (such as "/nest")');
  }
  if (engine !== undefined) {
    if (
      engine === null ||
      typeof engine !== 'object' ||
      typeof (engine as QuiesceEngine).decide !== 'function'
    ) {
      throw invalid('engine', 'must be an engine from createQuiesce()');
    }
    const extra = Object.keys(core);
    if (extra.length > 0) {
      throw invalid(extra[0]!, 'is an engine option: give it to createQuiesce(), or drop options.engine');
    }
  }
  // Core validates its own options here and names the field.
  const theEngine = engine ?? createQuiesce(core);
  return {
    engine: theEngine,
    enforcer: new HttpEnforcer(theEngine, {
      logger: { warn: (message, fields) => nestLogger.warn(`${message} ${JSON.stringify(fields ?? {})}`) },
    }),
    ownsEngine: engine === undefined,
    principal,
    inventory: inventory ?? true,
    decideBeforeBody: decideBeforeBody ?? true,
    mountPath: mountPath === undefined ? '' : normalizeMountPath(mountPath),
    rules: (core as QuiesceOptions).rules ?? [],
    graphqlPolicies: new Map(),
  };
}

/** Token of the valueless provider that installs the early decision when the module is created. */
const QUIESCE_EARLY_DECISION = Symbol.for('quiesce:nestjs-early-decision-installer');

/** Starts the engine before the app serves, reports the inventory, closes an engine it created. */
@Injectable()
class QuiesceLifecycle implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(QUIESCE_MODULE_OPTIONS) private readonly options: ResolvedModuleOptions,
    @Inject(DiscoveryService) private readonly discovery: DiscoveryService,
    @Inject(MetadataScanner) private readonly scanner: MetadataScanner,
    @Optional() @Inject(ApplicationConfig) private readonly config?: ApplicationConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.options.engine.start();
  }

  onApplicationBootstrap(): void {
    const o = this.options;
    o.graphqlPolicies = scanApplication(
      o.engine,
      this.discovery,
      this.scanner,
      joinPath(o.mountPath, this.config?.getGlobalPrefix() ?? ''),
      o.inventory,
      o.rules,
      o.mountPath,
    );
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.options.ownsEngine) await this.options.engine.close();
  }
}

function providers(options: Provider, globalGuard: boolean | undefined): Provider[] {
  const list: Provider[] = [
    options,
    {
      provide: QUIESCE,
      useFactory: (o: ResolvedModuleOptions) => o.engine,
      inject: [QUIESCE_MODULE_OPTIONS],
    },
    {
      provide: QUIESCE_EARLY_DECISION,
      useFactory: (
        o: ResolvedModuleOptions,
        host: HttpAdapterHost,
        discovery: DiscoveryService,
        scanner: MetadataScanner,
        config: ApplicationConfig | undefined,
      ) => {
        installEarlyDecision(host.httpAdapter, o, discovery, scanner, config, globalGuard ?? false);
        return true;
      },
      inject: [
        QUIESCE_MODULE_OPTIONS,
        HttpAdapterHost,
        DiscoveryService,
        MetadataScanner,
        { token: ApplicationConfig, optional: true },
      ],
    },
    QuiesceLifecycle,
    { provide: APP_FILTER, useClass: QuiesceResponseFilter },
  ];
  if (globalGuard) list.push({ provide: APP_GUARD, useClass: ReadOnlyGuard });
  return list;
}

/**
 * Provides the engine under the {@link QUIESCE} token to the whole application (global), and
 * what {@link ReadOnlyGuard} needs.
 */
@Global()
@Module({})
// biome-ignore lint/complexity/noStaticOnlyClass: a Nest dynamic module is a class with static factories.
export class QuiesceModule {
  static forRoot(options: QuiesceModuleOptions = {}): DynamicModule {
    // Resolved here, so a bad option fails where it is written (creating an engine starts nothing).
    const resolved = resolveOptions(options);
    return {
      module: QuiesceModule,
      global: true,
      imports: [DiscoveryModule],
      providers: providers({ provide: QUIESCE_MODULE_OPTIONS, useValue: resolved }, options.globalGuard),
      exports: [QUIESCE, QUIESCE_MODULE_OPTIONS],
    };
  }

  static forRootAsync(options: QuiesceModuleAsyncOptions): DynamicModule {
    if (!options || typeof options.useFactory !== 'function') {
      throw new QuiesceError(
        'INVALID_INPUT',
        'QuiesceModule.forRootAsync: options.useFactory must be a function',
        {
          field: 'useFactory',
        },
      );
    }
    return {
      module: QuiesceModule,
      global: true,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      providers: providers(
        {
          provide: QUIESCE_MODULE_OPTIONS,
          useFactory: async (...args: unknown[]) => resolveOptions(await options.useFactory(...args)),
          inject: options.inject ?? [],
        },
        options.globalGuard,
      ),
      exports: [QUIESCE, QUIESCE_MODULE_OPTIONS],
    };
  }
}
