// Fails when src/api/schema.d.ts is missing or differs from what openapi-typescript makes of
// ../openapi/openapi.json now. The file is also regenerated before every build (`npm run build`),
// so a build can never ship stale types; this check catches drift in an edited checkout.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const committed = join(root, 'src/api/schema.d.ts');
const dir = mkdtempSync(join(tmpdir(), 'openapi-gen-'));
const fresh = join(dir, 'schema.d.ts');
try {
  execFileSync(
    join(root, 'node_modules/.bin/openapi-typescript'),
    [join(root, '../openapi/openapi.json'), '-o', fresh],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  if (!existsSync(committed)) {
    console.error('src/api/schema.d.ts is missing: run `npm run gen`');
    process.exit(1);
  }
  if (readFileSync(committed, 'utf8') !== readFileSync(fresh, 'utf8')) {
    console.error('src/api/schema.d.ts is out of date with ../openapi/openapi.json: run `npm run gen`');
    process.exit(1);
  }
  console.log('API types match openapi/openapi.json');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
