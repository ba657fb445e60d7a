export { quiesceExchange } from './quiesceExchange.js';
