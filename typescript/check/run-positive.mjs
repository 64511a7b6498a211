// Type-checks the golden modules and the programs in check/ (not check/negative/) with tsc:
// with the project's tsconfig.json (strict, moduleResolution bundler), then with the same under
// moduleResolution NodeNext, then with exactOptionalPropertyTypes and noUncheckedIndexedAccess,
// as an application's own settings may be.
//
//   node check/run-positive.mjs
//
// Prints `ok`/`FAIL` per configuration and `N passed, N failed`; exits non-zero on a failure.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const scratch = mkdtempSync(join(tmpdir(), 'outer-positive-'))

const variants = [
  ['tsconfig.json (strict, bundler)', null],
  ['+ module/moduleResolution NodeNext', { module: 'NodeNext', moduleResolution: 'NodeNext' }],
  ['+ exactOptionalPropertyTypes, noUncheckedIndexedAccess', { exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true }],
]

let passed = 0
let failed = 0
for (const [name, options] of variants) {
  let config = join(root, 'tsconfig.json')
  if (options) {
    config = join(scratch, `tsconfig.${passed + failed}.json`)
    writeFileSync(config, JSON.stringify({
      extends: join(root, 'tsconfig.json'),
      compilerOptions: options,
      include: [join(root, 'golden'), join(root, 'check')],
      exclude: [join(root, 'check', 'negative')],
    }))
  }
  const run = spawnSync(process.execPath, [tsc, '-p', config, '--pretty', 'false'], { cwd: root, encoding: 'utf8' })
  if (run.status === 0) {
    console.log(`ok   ${name}`)
    passed++
  } else {
    console.log(`FAIL ${name}\n${run.stdout}${run.stderr}`)
    failed++
  }
}
rmSync(scratch, { recursive: true, force: true })
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed ? 1 : 0)
