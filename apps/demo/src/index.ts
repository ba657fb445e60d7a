export { buildDemo, type Demo, type DemoOptions } from './buildDemo.js';
