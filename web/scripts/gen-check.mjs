// Fails when src/api/schema.d.ts differs from what openapi-typescript makes of
// ../openapi/openapi.json now (a checkout whose types drifted from the document). The file is not
// committed: a fresh checkout gets it generated here, and `npm run build` regenerates it first,
// so what is type-checked and built always matches the committed document.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const current = join(root, 'src/api/schema.d.ts');
const dir = mkdtempSync(join(tmpdir(), 'openapi-gen-'));
const fresh = join(dir, 'schema.d.ts');
try {
  execFileSync(
    join(root, 'node_modules/.bin/openapi-typescript'),
    [join(root, '../openapi/openapi.json'), '-o', fresh],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  if (!existsSync(current)) {
    copyFileSync(fresh, current);
    console.log('generated src/api/schema.d.ts from openapi/openapi.json');
  } else if (readFileSync(current, 'utf8') !== readFileSync(fresh, 'utf8')) {
    console.error('src/api/schema.d.ts is out of date with ../openapi/openapi.json: run `npm run gen`');
    process.exitCode = 1;
  } else {
    console.log('API types match openapi/openapi.json');
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
