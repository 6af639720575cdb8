import { defineConfig } from 'vite';

// The viewer is served by `geo-dino serve` from apps/viewer/dist, and copied into static sites by
// `geo-dino publish` (which may live under any path of a bucket: asset URLs are relative);
// everything is bundled (no CDN, works offline). Asset names are content-hashed; the server caches
// /assets/* as immutable. The static mode's worker is an ES module (geotiff.js loads its decoders
// lazily).
export default defineConfig({
  base: './',
  worker: { format: 'es' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 2000,
  },
});
