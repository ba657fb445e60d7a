// The browser bundle's global `QuiesceClient`: the fetch wrapper and what it needs, for a page
// without a bundler (`<script src=".../quiesce-client.global.js">`).
export { isQuiesceRetryError, QuiesceRetryError } from './quiesceRetryError.js';
export { withQuiesceRetry } from './withQuiesceRetry.js';
