// Which project a runner checks. By default typescript/ itself: golden/ and check/ against the
// packages of typescript/package.json (oRPC 1, tRPC). With `--project v2`, typescript/v2/: the
// same golden oRPC module against oRPC 2 (v2/package.json), with v2/check/ in place of check/.
//
// A project other than typescript/ checks the oRPC module only, and compiles the shared files as
// its own: golden/orpc.ts and check/negative/orpc-*.ts are copied to the same places under it
// (v2/golden/, v2/check/negative/: not in git), so that their bare imports ('@orpc/contract',
// '@orpc/client') resolve to its node_modules, exactly as they would in an application that has
// installed that version; `../clients.js` in a negative program is then v2/check/clients.ts.
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** typescript/ */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/**
 * Reads `--project DIR` (relative to typescript/) off `argv`, stages the shared files into that
 * project, and returns where things are: `dir` (the project), `tsconfig` (its tsconfig.json),
 * `tsc` (its TypeScript), `args` (the other arguments).
 */
export function project(argv) {
  const args = [...argv]
  let dir = root
  const at = args.indexOf('--project')
  if (at >= 0) {
    if (!args[at + 1]) throw new Error('--project needs a directory (e.g. --project v2)')
    dir = resolve(root, args[at + 1])
    args.splice(at, 2)
  }
  const tsc = join(dir, 'node_modules', 'typescript', 'bin', 'tsc')
  if (!existsSync(tsc)) throw new Error(`no ${tsc}: run \`npm ci\` in ${dir}`)
  if (dir !== root) stage(dir)
  return { dir, tsconfig: join(dir, 'tsconfig.json'), tsc, args, oRpcOnly: dir !== root }
}

function stage(dir) {
  mkdirSync(join(dir, 'golden'), { recursive: true })
  copyFileSync(join(root, 'golden', 'orpc.ts'), join(dir, 'golden', 'orpc.ts'))
  const negative = join(dir, 'check', 'negative')
  rmSync(negative, { recursive: true, force: true })
  mkdirSync(negative, { recursive: true })
  for (const name of readdirSync(join(root, 'check', 'negative'))) {
    if (name.startsWith('orpc-') && name.endsWith('.ts')) {
      copyFileSync(join(root, 'check', 'negative', name), join(negative, name))
    }
  }
}
