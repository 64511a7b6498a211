// Runs check/use.ts against a chat server: the values the real clients receive must be what the
// golden types say. Compiles use.ts with tsc (the project's options, emitting) into
// node_modules/.cache/outer-check, then runs each protocol its `protocols` lists (oRPC at /rpc and
// tRPC at /trpc; with `--project v2`, v2/check/use.ts: oRPC 2 at /rpc2).
//
//   node check/run-use.mjs [--project v2]     starts the chat binary ($CHAT_BIN, else the newest
//                                             of ../target/{release,debug}/chat) on a free port
//   node check/run-use.mjs [--project v2] http://HOST:PORT   uses a running chat server
//
// Prints one line per protocol and `N passed, N failed`; exits non-zero on a failure.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'
import { project, root } from './project.mjs'

const { dir, tsconfig, tsc, args } = project(process.argv.slice(2))
// in the project's node_modules, so that the emitted files import the project's packages
const out = join(dir, 'node_modules', '.cache', 'outer-check')

rmSync(out, { recursive: true, force: true })
const built = spawnSync(process.execPath, [
  // rootDir typescript/: v2/check/ imports ../../check/expect.ts
  tsc, '-p', tsconfig, '--noEmit', 'false', '--outDir', out, '--rootDir', root, '--pretty', 'false',
], { cwd: dir, encoding: 'utf8' })
if (built.status !== 0) {
  process.stdout.write(built.stdout + built.stderr)
  console.log('0 passed, 1 failed')
  process.exit(1)
}
// Node takes no package scope across node_modules: say the emitted files are modules.
mkdirSync(out, { recursive: true })
writeFileSync(join(out, 'package.json'), '{"type":"module"}\n')

let server
let base = args[0]
if (!base) {
  const candidates = [process.env.CHAT_BIN, join(root, '..', 'target', 'release', 'chat'), join(root, '..', 'target', 'debug', 'chat')]
    .filter((path) => path && existsSync(path))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
  if (candidates.length === 0) {
    console.log('skip: no chat server (build it: cargo build -p outer-examples --bin chat), or pass its URL')
    process.exit(0)
  }
  const bin = process.env.CHAT_BIN ?? candidates[0]
  server = spawn(bin, ['--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] })
  base = await new Promise((resolveBase, reject) => {
    const timer = setTimeout(() => reject(new Error(`${bin} did not say where it listens`)), 20000)
    let seen = ''
    server.stdout.on('data', (chunk) => {
      seen += chunk
      const match = /listening on (http:\/\/\S+)/.exec(seen)
      if (match) {
        clearTimeout(timer)
        resolveBase(match[1])
      }
    })
    server.on('exit', (code) => reject(new Error(`${bin} exited with ${code}`)))
  })
}

/** `{ name, golden, path, run(base) }` for each protocol: see check/use.ts */
const { protocols } = await import(pathToFileURL(join(out, relative(root, dir), 'check', 'use.js')).href)
let passed = 0
let failed = 0
for (const { name, golden, path, run } of protocols) {
  const url = `${base}${path}`
  try {
    await run(base)
    console.log(`ok   ${name}: every procedure, typed by ${golden}, at ${url}`)
    passed++
  } catch (error) {
    console.log(`FAIL ${name}: ${error?.stack ?? error}`)
    failed++
  }
}
server?.kill('SIGTERM')
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed ? 1 : 0)
