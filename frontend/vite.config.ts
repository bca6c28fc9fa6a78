import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// The built dist/ is committed and embedded in the Go binary, and CI fails
// when a fresh build differs from it: keep the output deterministic (no
// source maps with absolute paths, no build timestamps).
export default defineConfig({
  plugins: [preact({ devToolsEnabled: false, prefreshEnabled: false })],
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    assetsInlineLimit: 0,
    reportCompressedSize: true,
  },
  server: {
    // `npm run dev` against a local `watchroom serve` on :8080.
    proxy: {
      '/api': 'http://127.0.0.1:8080',
      '/ws': { target: 'ws://127.0.0.1:8080', ws: true },
    },
  },
});
