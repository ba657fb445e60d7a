export { quiesceKy } from './quiesceKy.js';
