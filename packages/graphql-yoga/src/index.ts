export { quiesceDirectives, readSchemaWrites, type SchemaWrites, type WriteField } from './directives.js';
export { type QuiesceYogaContext, type QuiesceYogaOptions, useQuiesce } from './useQuiesce.js';
