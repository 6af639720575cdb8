export * from './providers.js';
export * from './protocol.js';
export * from './session-pool.js';
