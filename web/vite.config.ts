// The dashboard's build: CMake runs `vite build` into the build directory, and the files are
// embedded into the mare binary (src/dashboard). `npm run dev` serves it with hot reload,
// talking to a `mare run` on 127.0.0.1:8080.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  build: {
    assetsDir: 'assets',
    // world-atlas's 10m countries are one 3.6 MB JSON file, fetched once and cached.
    chunkSizeWarningLimit: 1024,
    reportCompressedSize: false,
    target: 'es2020',
  },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:8080',
      '/metrics': 'http://127.0.0.1:8080',
    },
  },
});
