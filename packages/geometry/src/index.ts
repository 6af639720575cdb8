export * from './browser.js';
export * from './aoi-file.js';
