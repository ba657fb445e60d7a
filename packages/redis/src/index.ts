export {
  createRedisStore,
  type RedisConnectionOptions,
  type RedisReconnectOptions,
  type RedisStore,
  type RedisStoreOptions,
} from './redisStore.js';
