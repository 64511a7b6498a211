// Interop check: the real @orpc/client over WebSocket (`RPCLink` from `@orpc/client/websocket` on
// the `ws` package's WebSocket, behind a small reconnecting wrapper, and `ClientRetryPlugin`)
// against a server that speaks oRPC's RPC protocol over WebSocket.
// Usage: node orpc-ws.mjs <ws url>   e.g. node orpc-ws.mjs ws://127.0.0.1:3101/rpc
// Optional env: DROP_URL, CLEANUP_URL, AUTH_PROCEDURES (see README.md). Exits non-zero on the first
// failed check.
import assert from 'node:assert/strict'
import { createORPCClient, getEventMeta, ORPCError } from '@orpc/client'
import { ClientRetryPlugin } from '@orpc/client/plugins'
import { RPCLink } from '@orpc/client/websocket'
import WebSocket from 'ws'
import { check, fail, frameLog, poll, postDrop, settled, sleep, step, until, withTimeout } from './lib.mjs'

const base = process.argv[2]
if (!base) fail('usage: node orpc-ws.mjs <ws url, e.g. ws://127.0.0.1:3101/rpc>')
const { DROP_URL, CLEANUP_URL, AUTH_PROCEDURES } = process.env
// A throw the client libraries make outside any call (a listener, a timer) is a failure too.
for (const event of ['unhandledRejection', 'uncaughtException']) {
  process.on(event, (err) => fail(`${event}: ${err?.stack ?? err}`))
}

// oRPC's websocket link is bound to one socket object and has no reconnect of its own (when the
// socket closes, every call on it fails). This wrapper (what `partysocket` does in a browser)
// opens a new socket whenever the current one closes, after `gate` (a promise, read at each
// reconnect) settles; the retry plugin then calls again on it with the last event id. While no
// socket is open it reports CONNECTING, so the link waits for `open` before sending.
class ReconnectingSocket {
  constructor(url, log, options) {
    Object.assign(this, { url, log, options, listeners: new Map(), stopped: false, gate: Promise.resolve() })
    this.connect()
  }
  connect() {
    const ws = new this.log.WebSocket(this.url, this.options)
    this.ws = ws
    for (const type of ['open', 'message', 'error']) ws.addEventListener(type, (e) => this.emit(type, e))
    ws.addEventListener('close', (e) => {
      this.emit('close', e)
      if (this.stopped) return
      this.ws = null
      this.gate.then(() => sleep(50)).then(() => this.stopped || this.connect())
    })
  }
  get readyState() {
    return this.ws ? this.ws.readyState : WebSocket.CONNECTING
  }
  emit(type, e) {
    for (const [fn, once] of [...(this.listeners.get(type) ?? new Map())]) {
      if (once) this.listeners.get(type).delete(fn)
      fn(e)
    }
  }
  addEventListener(type, fn, opts) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Map())
    this.listeners.get(type).set(fn, !!opts?.once)
  }
  removeEventListener(type, fn) {
    this.listeners.get(type)?.delete(fn)
  }
  send(data) {
    return this.ws.send(data)
  }
  close() {
    this.stopped = true
    this.ws?.close()
  }
}

// A client on its own reconnecting socket, with its own frame log (see lib.mjs). Retry is opt-in
// per call (context.retry, retryDelay, shouldRetry): a plain call must surface errors.
const sockets = []
function orpcClient(wsOptions, linkOptions = {}) {
  const log = frameLog(WebSocket)
  const socket = new ReconnectingSocket(base, log, wsOptions)
  sockets.push(socket)
  const link = new RPCLink({ websocket: socket, plugins: [new ClientRetryPlugin({ default: { retry: 0 } })], ...linkOptions })
  return { client: createORPCClient(link), log, socket }
}
const { client, log } = orpcClient()

// The requests (t absent or 1) sent for procedure path `u` ('/post/live') since frame `from`.
const requestsTo = (log, u, from = 0) =>
  log
    .messages('out', from)
    .map((m) => m.message)
    .filter((m) => (m.t === undefined || m.t === 1) && m.p?.u === u)
const next = (it, what, ms = 5000) => withTimeout(it.next(), ms, what)
const thrown = (promise, what, ms = 5000) =>
  withTimeout(promise, ms, what).then(
    (r) => assert.fail(`expected ${what} to throw, got ${JSON.stringify(r)}`),
    (e) => e,
  )
const assertORPCError = (err, { code, status, message, data }) => {
  assert.ok(err instanceof ORPCError, `expected ORPCError, got ${err?.constructor?.name}: ${err}`)
  assert.equal(err.code, code)
  assert.equal(err.status, status)
  if (message !== undefined) assert.equal(err.message, message)
  if (data !== undefined) assert.deepEqual(err.data, data)
}
// Reads an iterator to its end: the values, and the error it threw if it did.
async function drain(it, what, ms = 10000) {
  const values = []
  for (;;) {
    let r
    try {
      r = await next(it, what, ms)
    } catch (error) {
      return { values, error }
    }
    if (r.done) return { values, done: r.value }
    values.push(r.value)
  }
}

await step('unary ping {n:1} returns {n:1}', async () => {
  const from = log.frames.length
  assert.deepEqual(await withTimeout(client.ping({ n: 1 }), 5000, 'ping'), { n: 1 })
  const [sent] = log.messages('out', from).map((m) => m.message)
  assert.deepEqual(sent, { i: sent.i, p: { u: '/ping', b: { json: { n: 1 } } } })
  const [answer] = log.messages('in', from).map((m) => m.message)
  assert.deepEqual(answer, { i: sent.i, p: { b: { json: { n: 1 } } } })
})

await step('unary post.create {title} returns {id:number, title}', async () => {
  const from = log.frames.length
  const row = await withTimeout(client.post.create({ title: 'ws-interop' }), 5000, 'post.create')
  assert.equal(typeof row.id, 'number')
  assert.equal(row.title, 'ws-interop')
  assert.equal(requestsTo(log, '/post/create', from).length, 1)
})

await step('counter 1..3: values {n}, ids "1","2","3", retry 1000, return value {done:true}', async () => {
  const it = await withTimeout(client.counter({ from: 1, to: 3, delayMs: 10 }), 5000, 'counter call')
  for (const n of [1, 2, 3]) {
    const r = await next(it, `counter value ${n}`)
    assert.equal(r.done, false)
    assert.deepEqual(r.value, { n })
    const meta = getEventMeta(r.value)
    assert.equal(meta?.id, String(n))
    assert.equal(meta?.retry, 1000)
  }
  assert.deepEqual(await next(it, 'counter return'), { done: true, value: { done: true } })
})

await step('counter resumed with lastEventId "2" (the last-event-id header of the request): only {n:3}', async () => {
  const from = log.frames.length
  const it = await withTimeout(client.counter({ from: 1, to: 3, delayMs: 10 }, { lastEventId: '2' }), 5000, 'counter call')
  assert.equal(requestsTo(log, '/counter', from)[0]?.p?.h?.['last-event-id'], '2', 'the request did not carry last-event-id: 2')
  const { values, error, done } = await drain(it, 'counter value')
  assert.equal(error, undefined)
  assert.deepEqual(values, [{ n: 3 }])
  assert.deepEqual(done, { done: true })
})

await step('post.live receives posts created while it reads, with their ids', async () => {
  const it = await withTimeout(client.post.live(), 5000, 'post.live call')
  await sleep(100) // let the server subscribe before publishing
  const a = await client.post.create({ title: 'live-a' })
  const b = await client.post.create({ title: 'live-b' })
  for (const row of [a, b]) {
    const r = await next(it, `live post ${row.id}`)
    assert.deepEqual(r.value, row)
    assert.equal(getEventMeta(r.value)?.id, String(row.id))
  }
  await withTimeout(it.return(), 5000, 'iterator.return()')
})

await step('failing: value {n:1}, then ORPCError BAD_REQUEST/400 "nope" data {why:"x"}', async () => {
  const it = await withTimeout(client.failing(), 5000, 'failing call')
  const { values, error } = await drain(it, 'failing')
  assert.deepEqual(values, [{ n: 1 }])
  assertORPCError(error, { code: 'BAD_REQUEST', status: 400, message: 'nope', data: { why: 'x' } })
  assert.equal(error.defined, false)
})

await step('failing5xx: value {n:1}, then ORPCError INTERNAL_SERVER_ERROR/500 "boom"', async () => {
  const it = await withTimeout(client.failing5xx(), 5000, 'failing5xx call')
  const { values, error } = await drain(it, 'failing5xx')
  assert.deepEqual(values, [{ n: 1 }])
  assertORPCError(error, { code: 'INTERNAL_SERVER_ERROR', status: 500, message: 'boom' })
})

// As over HTTP (orpc.mjs): ClientRetryPlugin retries whatever an iterator throws unless
// shouldRetry says no; one that spares statuses below 500 retries a 5xx and not a 4xx. A retry
// is a new request (a new id) on the socket.
const spare4xx = ({ error }) => !(error instanceof ORPCError && error.status < 500)
const retried = async (proc, context) => {
  const from = log.frames.length
  const it = await withTimeout(client[proc](undefined, { context }), 5000, `${proc} call`)
  const out = await drain(it, proc)
  return { ...out, requests: requestsTo(log, `/${proc}`, from).length }
}

await step('failing, retry 2 with shouldRetry sparing 4xx: one request, the BAD_REQUEST is not retried', async () => {
  const { values, error, requests } = await retried('failing', { retry: 2, retryDelay: 50, shouldRetry: spare4xx })
  assertORPCError(error, { code: 'BAD_REQUEST', status: 400 })
  assert.deepEqual(values, [{ n: 1 }])
  assert.equal(requests, 1)
})

await step('failing5xx, retry 2 with shouldRetry sparing 4xx: retried, 3 requests, then INTERNAL_SERVER_ERROR', async () => {
  const { values, error, requests } = await retried('failing5xx', { retry: 2, retryDelay: 50, shouldRetry: spare4xx })
  assertORPCError(error, { code: 'INTERNAL_SERVER_ERROR', status: 500 })
  assert.deepEqual(values, [{ n: 1 }, { n: 1 }, { n: 1 }])
  assert.equal(requests, 3)
})

await step('failing, retry 2 without shouldRetry: ClientRetryPlugin retries the 4xx too (3 requests)', async () => {
  const { error, requests } = await retried('failing', { retry: 2, retryDelay: 50 })
  assertORPCError(error, { code: 'BAD_REQUEST', status: 400 })
  assert.equal(requests, 3)
})

await step('unknown path: ORPCError NOT_FOUND/404, and the socket still serves', async () => {
  const from = log.frames.length
  const err = await thrown(client.nope({ x: 1 }), 'nope')
  assertORPCError(err, { code: 'NOT_FOUND', status: 404 })
  const [answer] = log.messages('in', from).map((m) => m.message)
  assert.equal(answer?.p?.s, 404)
  assert.deepEqual(await withTimeout(client.ping({ n: 2 }), 5000, 'ping'), { n: 2 })
  check(`not found observed: ${JSON.stringify(answer)} -> ORPCError ${err.code} "${err.message}"`)
})

// The cancel steps: iterator.return() and aborting the call's signal both send an abort
// message ({"i":…,"t":4}); the server stops the handler (and sends nothing back).
const cancelStep = (how, cancel) =>
  step(`cancel by ${how}: sends the abort message and ends the client iterator${CLEANUP_URL ? ', the server drops the handler' : ''}`, async () => {
    const baseline = CLEANUP_URL ? await settled(CLEANUP_URL) : undefined
    const from = log.frames.length
    const ac = new AbortController()
    const it = await withTimeout(client.post.live(undefined, { signal: ac.signal }), 5000, 'post.live call')
    const [request] = requestsTo(log, '/post/live', from)
    if (CLEANUP_URL) await poll(CLEANUP_URL, (n) => n === baseline + 1, 'server sees the open stream')
    const outcome = await cancel(it, ac)
    await until(
      () => log.messages('out', from).some((m) => m.message.i === request.i && m.message.t === 4),
      'the abort message',
      log.describe,
      3000,
    )
    if (CLEANUP_URL) await poll(CLEANUP_URL, (n) => n === baseline, 'server cleaned the stream up')
    check(`cancel by ${how} observed: ${outcome}`)
  })

await cancelStep('iterator.return()', async (it) => {
  const r = await withTimeout(it.return(), 3000, 'iterator.return()')
  assert.equal(r.done, true)
  return `return() gave ${JSON.stringify(r)}`
})
await cancelStep('AbortController.abort()', async (it, ac) => {
  const pending = it.next()
  ac.abort()
  const outcome = await withTimeout(
    pending.then(
      (r) => `next() returned ${JSON.stringify(r)}`,
      (e) => `next() threw ${e?.name}: ${e?.message}`,
    ),
    3000,
    'iterator end after abort',
  )
  assert.ok(/AbortError|"done":true/.test(outcome), `unexpected end after abort: ${outcome}`)
  return outcome
})
if (CLEANUP_URL) {
  await step('closing the socket with a live stream: the server drops the handler', async () => {
    const baseline = await settled(CLEANUP_URL)
    const c = orpcClient()
    const it = await withTimeout(c.client.post.live(), 5000, 'post.live call')
    await poll(CLEANUP_URL, (n) => n === baseline + 1, 'server sees the open stream')
    const pending = it.next().then(
      (r) => `returned ${JSON.stringify(r)}`,
      (e) => `threw ${e?.message}`,
    )
    c.socket.close()
    await until(() => c.log.sockets[0].closed, 'the socket to close', c.log.describe, 3000)
    await poll(CLEANUP_URL, (n) => n === baseline, 'server cleaned the stream up')
    check(`socket close observed: close ${JSON.stringify(c.log.sockets[0].closed)}, next() ${await withTimeout(pending, 3000, 'next()')}`)
  })
} else {
  console.log('skip server-side cleanup observation (CLEANUP_URL not set)')
}

if (DROP_URL) {
  await step('drop: after the server cuts the socket, the client calls again with last-event-id and gets every post once, in order', async () => {
    const baseline = CLEANUP_URL ? await settled(CLEANUP_URL) : undefined
    // The subscriber on a socket of its own, whose reconnect waits for the posts made after the cut.
    const sub = orpcClient()
    let open
    const ac = new AbortController()
    const context = { retry: 3, retryDelay: 100 }
    const it = await withTimeout(sub.client.post.live(undefined, { signal: ac.signal, context }), 5000, 'post.live call')
    await sleep(100) // let the server subscribe before publishing
    const a = await client.post.create({ title: 'drop-a' })
    const b = await client.post.create({ title: 'drop-b' })
    const got = []
    for (const row of [a, b]) got.push((await next(it, `post ${row.id} before the cut`)).value)
    const pending = next(it, 'the first post after the cut', 15000)
    sub.socket.gate = new Promise((resolve) => (open = resolve))
    const mainSocket = log.sockets.at(-1)
    await postDrop(DROP_URL)
    await until(() => sub.log.sockets[0].closed && mainSocket.closed, 'the cut to close both sockets', sub.log.describe, 5000)
    const c = await withTimeout(client.post.create({ title: 'drop-c' }), 10000, 'post.create after the cut')
    const d = await withTimeout(client.post.create({ title: 'drop-d' }), 5000, 'post.create after the cut')
    assert.equal(sub.log.sockets.length, 1, 'the subscriber reconnected before the gate opened')
    open()
    got.push((await pending).value)
    got.push((await next(it, 'the second post made while away')).value)
    const e = await client.post.create({ title: 'drop-e' })
    got.push((await next(it, 'a post made after the reconnect')).value)
    const extra = await withTimeout(it.next(), 200, 'nothing more').then(
      (r) => r,
      () => null,
    )
    assert.equal(extra, null, `more arrived: ${JSON.stringify(extra)}`)
    assert.deepEqual(got, [a, b, c, d, e], 'not every post exactly once, in order')
    const closed = sub.log.sockets[0].closed
    assert.equal(closed.code, 1006, `the cut was not abrupt: close ${JSON.stringify(closed)}`)
    const calls = requestsTo(sub.log, '/post/live')
    assert.equal(calls.length, 2, `expected the call and one retry, saw ${calls.length}`)
    assert.equal(calls[1].p.h?.['last-event-id'], String(b.id), 'the retry did not carry last-event-id')
    assert.notEqual(calls[1].i, calls[0].i, 'the retry reused the request id')
    ac.abort()
    await until(
      () => sub.log.messages('out').some((m) => m.message.i === calls[1].i && m.message.t === 4),
      'the abort message',
      sub.log.describe,
      3000,
    )
    if (CLEANUP_URL) await poll(CLEANUP_URL, (n) => n === baseline, 'server cleaned the resumed stream up')
    sub.socket.close()
    check(`drop observed: cut seen as close ${closed.code}; the retry sent ${JSON.stringify(calls[1])}`)
  })
} else {
  console.log('skip drop/reconnect (DROP_URL not set)')
}

// AUTH_PROCEDURES: Outer's chat builds a socket's context from its upgrade request, so a token
// rides on the upgrade's `authorization` header (the `ws` package can set one; a browser cannot),
// or, as a browser must send it, in the link's `headers` option: each call's `h`, from which Outer
// builds that call's context as it would an HTTP call's.
if (AUTH_PROCEDURES) {
  await step('me: {name:"bob"} through the link\'s headers option (each call\'s h), as a browser signs in', async () => {
    const bob = orpcClient(undefined, { headers: { authorization: 'Bearer bob' } })
    assert.deepEqual(await withTimeout(bob.client.me(), 5000, 'me'), { name: 'bob' })
    const sent = bob.log.messages('out').map((m) => m.message).find((m) => m.p?.u === '/me')
    assert.equal(sent?.p?.h?.authorization, 'Bearer bob', JSON.stringify(sent))
    bob.socket.close()
  })
  await step('me: UNAUTHORIZED/401 without a token; {name:"ann"} on a socket opened with authorization: Bearer ann', async () => {
    const err = await thrown(client.me(), 'me without a token')
    assertORPCError(err, { code: 'UNAUTHORIZED', status: 401 })
    const ann = orpcClient({ headers: { authorization: 'Bearer ann' } })
    assert.deepEqual(await withTimeout(ann.client.me(), 5000, 'me'), { name: 'ann' })
    ann.socket.close()
  })
} else {
  console.log('skip auth steps (AUTH_PROCEDURES not set)')
}

for (const socket of sockets) socket.close()
await until(() => sockets.every((s) => !s.ws || s.ws.readyState === WebSocket.CLOSED), 'the sockets to close', () => '', 3000).catch(() => {})
// Whoever runs this may check the server's count next: leave it with no stream open.
if (CLEANUP_URL) await settled(CLEANUP_URL).catch((e) => fail(`after the last step: ${e.message}`))
console.log('orpc-ws: all checks passed')
process.exit(0)
