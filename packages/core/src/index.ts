export * from './errors.js';
export * from './log.js';
export * from './progress.js';
export * from './fs.js';
export * from './http.js';
export * from './schema.js';
export * from './home.js';
export * from './version.js';
