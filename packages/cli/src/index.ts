export { type CliIo, commandHelp, runCli, USAGE } from './cli.js';
export { CliError, EXIT, type ExitCode, exitForCode } from './cliError.js';
export type { BeginRequest, Controller, EndRequest, ExtendRequest, IntentView } from './controller.js';
export { formatDuration, parseDuration, parseTime } from './duration.js';
export { createHttpController, type HttpControllerOptions, parseBaseUrl } from './httpController.js';
export { createStoreController, parseStoreUrl, type StoreControllerOptions } from './storeController.js';
