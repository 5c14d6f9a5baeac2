/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Development only: `DEV_API_KEY=ipk_... npm run dev` proxies /api to a local api and adds the
// bearer key on the proxy, so the key stays in this Node process and never reaches the bundle.
const apiTarget = process.env.API_URL ?? 'http://127.0.0.1:8080';
const devKey = process.env.DEV_API_KEY;

// The policy the api serves the built UI with; `vite preview` applies it too, so a build that
// would break under it (an inline script or style) shows in the browser before it ships.
const csp =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'";
const proxy = Object.fromEntries(
  ['/api', '/readyz'].map((path) => [
    path,
    { target: apiTarget, changeOrigin: false, headers: devKey ? { Authorization: `Bearer ${devKey}` } : {} },
  ]),
);

export default defineConfig({
  plugins: [react()],
  build: {
    target: 'es2022',
    sourcemap: false,
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    proxy,
  },
  preview: {
    host: '127.0.0.1',
    port: 4173,
    proxy,
    headers: { 'Content-Security-Policy': csp },
  },
  test: {
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx'],
    environment: 'node',
  },
});
