export {
  type FlagFollower,
  type FlagFollowerOptions,
  type FlagFollowerStatus,
  type FlagWindowDefaults,
  followFlag,
} from './flagFollower.js';
