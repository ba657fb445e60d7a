export * from './enforcementInvariant.js';
export * from './fakeStatuspage.js';
export * from './fleetSuite.js';
export * from './graphqlContract.js';
export * from './httpContract.js';
export * from './services.js';
export * from './storeContract.js';
export * from './waitFor.js';
