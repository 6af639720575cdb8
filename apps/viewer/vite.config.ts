import { defineConfig } from 'vite';

// The viewer is served by `geo-dino serve` from apps/viewer/dist; everything is bundled (no CDN,
// works offline). Asset names are content-hashed; the server caches /assets/* as immutable.
export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 2000,
  },
});
