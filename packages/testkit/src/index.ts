export * from './services.js';
export * from './fakeStatuspage.js';
export * from './storeContract.js';
export * from './httpContract.js';
