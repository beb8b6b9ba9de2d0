import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Built into web/dist, which the API serves at `/`; file names carry a content hash, so they cache forever.
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, assetsDir: 'static' },
});
