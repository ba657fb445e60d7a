export { quiesceRetryLink } from './quiesceRetryLink.js';
