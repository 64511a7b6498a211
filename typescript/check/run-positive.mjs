// Type-checks the golden modules and the programs in check/ (not check/negative/) with tsc:
// with the project's tsconfig.json (strict, moduleResolution bundler), then with the same under
// moduleResolution NodeNext, then with exactOptionalPropertyTypes and noUncheckedIndexedAccess,
// as an application's own settings may be. With `--project v2`, the same for typescript/v2/ (the
// golden oRPC module and v2/check/ against oRPC 2: see check/project.mjs), and once more with
// skipLibCheck off, so that oRPC 2's own declarations are checked with it.
//
//   node check/run-positive.mjs [--project v2]
//
// Prints `ok`/`FAIL` per configuration and `N passed, N failed`; exits non-zero on a failure.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { project } from './project.mjs'

const { dir, tsconfig, tsc, oRpcOnly } = project(process.argv.slice(2))
const scratch = mkdtempSync(join(tmpdir(), 'outer-positive-'))

const variants = [
  ['tsconfig.json (strict, bundler)', null],
  ['+ module/moduleResolution NodeNext', { module: 'NodeNext', moduleResolution: 'NodeNext' }],
  ['+ exactOptionalPropertyTypes, noUncheckedIndexedAccess', { exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true }],
]
// Not for typescript/ itself: tRPC's declarations need lib esnext.disposable, and it has no
// @opentelemetry/api (an optional peer of @orpc/shared whose types it imports); v2 installs it.
if (oRpcOnly) variants.push(['+ skipLibCheck false (the packages\' declarations checked too)', { skipLibCheck: false }])

let passed = 0
let failed = 0
for (const [name, options] of variants) {
  let config = tsconfig
  if (options) {
    config = join(scratch, `tsconfig.${passed + failed}.json`)
    writeFileSync(config, JSON.stringify({
      extends: tsconfig,
      compilerOptions: options,
      include: [join(dir, 'golden'), join(dir, 'check')],
      exclude: [join(dir, 'check', 'negative')],
    }))
  }
  const run = spawnSync(process.execPath, [tsc, '-p', config, '--pretty', 'false'], { cwd: dir, encoding: 'utf8' })
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
