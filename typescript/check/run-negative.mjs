// Each program in check/negative/ makes one mistake a client of the golden modules must not
// compile: tsc, run on that file alone with the project's compiler options, must fail, and report
// its errors on the line marked `// @error` and nowhere else.
//
//   node check/run-negative.mjs [--project v2] [FILE...]   (default: every check/negative/*.ts)
//
// With `--project v2` the programs are typescript/v2/'s: the oRPC ones of check/negative/, copied
// there and compiled against oRPC 2 (see check/project.mjs).
// Prints `ok`/`FAIL` per file and `N passed, N failed`; exits non-zero on a failure.
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { project, root } from './project.mjs'

const { dir, tsconfig, tsc, args } = project(process.argv.slice(2))
const negative = join(dir, 'check', 'negative')
const files = args.length
  ? args.map((file) => resolve(file))
  : readdirSync(negative).filter((name) => name.endsWith('.ts')).sort().map((name) => join(negative, name))
const scratch = mkdtempSync(join(tmpdir(), 'outer-negative-'))

/** tsc on `file` alone, with the project's tsconfig.json: its exit code and output. */
function compile(file, index) {
  const config = join(scratch, `tsconfig.${index}.json`)
  writeFileSync(config, JSON.stringify({ extends: tsconfig, include: [], files: [file] }))
  return new Promise((done) => {
    const child = spawn(process.execPath, [tsc, '-p', config, '--pretty', 'false'], { cwd: dir })
    let output = ''
    child.stdout.on('data', (chunk) => (output += chunk))
    child.stderr.on('data', (chunk) => (output += chunk))
    child.on('close', (code) => done({ code, output }))
  })
}

/** What is wrong with `file`'s result, or null when it failed as it must. */
function judge(file, { code, output }) {
  const lines = readFileSync(file, 'utf8').split('\n')
  const marked = lines.flatMap((line, i) => (/\/\/ @error\b/.test(line) ? [i + 1] : []))
  if (marked.length !== 1) return { problem: `has ${marked.length} \`// @error\` markers, not one` }
  const [line] = marked
  // tsc --pretty false: `path(line,col): error TS1234: message`, then indented continuation lines
  const errors = [...output.matchAll(/^(.+?)\((\d+),(\d+)\): error (TS\d+): (.*)$/gm)].map((m) => ({
    file: resolve(dir, m[1]),
    line: Number(m[2]),
    code: m[4],
    message: m[5],
  }))
  if (code === 0) return { problem: 'compiled without errors' }
  if (errors.length === 0) return { problem: `tsc failed (exit ${code}) without a located error:\n${output}` }
  const elsewhere = errors.filter((e) => e.file !== file || e.line !== line)
  if (elsewhere.length) {
    const where = elsewhere.map((e) => `${relative(root, e.file)}:${e.line} ${e.code} ${e.message}`).join('\n  ')
    return { problem: `errors off the marked line ${line}:\n  ${where}` }
  }
  return { problem: null, line, first: errors[0] }
}

let passed = 0
let failed = 0
const results = new Array(files.length)
// two at a time: tsc is single-threaded and the machine has two cores
let next = 0
async function worker() {
  while (next < files.length) {
    const index = next++
    results[index] = judge(files[index], await compile(files[index], index))
  }
}
await Promise.all([worker(), worker()])
for (const [index, file] of files.entries()) {
  const { problem, line, first } = results[index]
  const name = relative(root, file)
  if (problem) {
    console.log(`FAIL ${name}: ${problem}`)
    failed++
  } else {
    console.log(`ok   ${name}:${line} ${first.code} ${first.message}`)
    passed++
  }
}
rmSync(scratch, { recursive: true, force: true })
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed || passed === 0 ? 1 : 0)
