export * from './services.js';
export * from './storeContract.js';
