import { runHttpContractSuite } from '@quiesce/testkit';
import { buildExpressApp } from './expressApp.js';

runHttpContractSuite({ name: 'express', buildApp: (input) => buildExpressApp(input) });
