export * from './s3.js';
export * from './publish.js';
export * from './objects.js';
