// Interop check: the real @trpc/client over WebSocket (`createWSClient` + `wsLink`, the `ws`
// package's WebSocket) against a server that speaks tRPC v11's WebSocket protocol.
// Usage: node trpc-ws.mjs <ws url>   e.g. node trpc-ws.mjs ws://127.0.0.1:3201/trpc
// Optional env: DROP_URL, CLEANUP_URL, AUTH_PROCEDURES (see README.md). Exits non-zero on the first
// failed check.
import assert from 'node:assert/strict'
import { createTRPCClient, createWSClient, TRPCClientError, wsLink } from '@trpc/client'
import WebSocket from 'ws'
import { check, fail, frameLog, poll, postDrop, recordSubscription, settled, sleep, step, until, withTimeout } from './lib.mjs'

const base = process.argv[2]
if (!base) fail('usage: node trpc-ws.mjs <ws url, e.g. ws://127.0.0.1:3201/trpc>')
const { DROP_URL, CLEANUP_URL, AUTH_PROCEDURES } = process.env
// A throw the client libraries make outside any call (a listener, a timer) is a failure too.
for (const event of ['unhandledRejection', 'uncaughtException']) {
  process.on(event, (err) => fail(`${event}: ${err?.stack ?? err}`))
}

// A client with its own frame log (`log.frames`, `log.sockets`: see lib.mjs), so checks can see
// what went over its sockets. `opts` go to createWSClient.
const clients = []
function trpcClient(opts = {}) {
  const log = frameLog(WebSocket)
  const wsClient = createWSClient({ url: base, WebSocket: log.WebSocket, ...opts })
  const client = createTRPCClient({ links: [wsLink({ client: wsClient })] })
  clients.push(wsClient)
  return { wsClient, client, log }
}

// Records every callback of one subscription; waitFor() polls it (see lib.mjs).
const subscribe = (client, proc, input) =>
  recordSubscription(
    proc.split('.').reduce((o, k) => o[k], client),
    input,
  )

// The messages of `log` in one direction since frame index `from`, as parsed JSON.
const sentSince = (log, from) => log.messages('out', from).map((m) => m.message)
const receivedSince = (log, from) => log.messages('in', from).map((m) => m.message)
const rejection = (promise, what) =>
  withTimeout(promise, 5000, what).then(
    (r) => assert.fail(`expected ${what} to fail, got ${JSON.stringify(r)}`),
    (e) => e,
  )
const assertTrpcError = (err, { code, httpStatus, shapeCode, message }) => {
  assert.ok(err instanceof TRPCClientError, `expected TRPCClientError, got ${err?.constructor?.name}: ${err}`)
  assert.equal(err.data?.code, code)
  assert.equal(err.data?.httpStatus, httpStatus)
  assert.equal(err.shape?.code, shapeCode)
  if (message !== undefined) assert.equal(err.message, message)
}

const { client, log } = trpcClient()

await step('query ping {n:1} over the socket returns {n:1}', async () => {
  const from = log.frames.length
  assert.deepEqual(await withTimeout(client.ping.query({ n: 1 }), 5000, 'ping'), { n: 1 })
  const [sent] = sentSince(log, from)
  assert.deepEqual(sent, { id: sent.id, method: 'query', params: { input: { n: 1 }, path: 'ping' } })
  assert.deepEqual(receivedSince(log, from), [{ id: sent.id, result: { type: 'data', data: { n: 1 } } }])
  assert.equal(log.sockets.length, 1, 'the client opened more than one socket')
})

await step('mutation post.create {title} over the socket returns {id:number, title}', async () => {
  const from = log.frames.length
  const row = await withTimeout(client.post.create.mutate({ title: 'ws-interop' }), 5000, 'post.create')
  assert.equal(typeof row.id, 'number')
  assert.equal(row.title, 'ws-interop')
  const [sent] = sentSince(log, from)
  assert.equal(sent.method, 'mutation')
  assert.equal(sent.params.path, 'post.create')
})

await step('batch: two queries and a mutation of one tick go out as one frame, answered one frame each', async () => {
  const from = log.frames.length
  const [a, b, row] = await withTimeout(
    Promise.all([client.ping.query({ n: 1 }), client.ping.query({ n: 2 }), client.post.create.mutate({ title: 'batched' })]),
    5000,
    'batch',
  )
  assert.deepEqual([a, b], [{ n: 1 }, { n: 2 }])
  assert.equal(row.title, 'batched')
  const frames = log.frames.slice(from).filter((f) => f.data !== 'PING' && f.data !== 'PONG') // keep-alive
  const out = frames.filter((f) => f.dir === 'out')
  assert.equal(out.length, 1, `expected 1 frame sent, saw ${out.length}: ${out.map((f) => f.data).join(' | ')}`)
  const batch = JSON.parse(out[0].data)
  assert.ok(Array.isArray(batch), 'the frame is not a JSON array')
  assert.deepEqual(
    batch.map((m) => [m.method, m.params.path]),
    [['query', 'ping'], ['query', 'ping'], ['mutation', 'post.create']],
  )
  const answers = frames.filter((f) => f.dir === 'in').map((f) => JSON.parse(f.data))
  assert.ok(answers.every((m) => !Array.isArray(m)), 'an answer came as an array')
  assert.deepEqual(answers.map((m) => m.id).sort(), batch.map((m) => m.id).sort())
})

await step('subscription post.live: onStarted, posts created while subscribed arrive as tracked {id, data}', async () => {
  const s = subscribe(client, 'post.live')
  await s.waitFor((s) => s.started, 'onStarted')
  await sleep(100) // let the server subscribe before publishing
  const a = await client.post.create.mutate({ title: 'live-a' })
  const b = await client.post.create.mutate({ title: 'live-b' })
  await s.waitFor((s) => s.data.length >= 2, 'two posts')
  await sleep(100) // a duplicate would show up here
  s.sub.unsubscribe()
  assert.deepEqual(s.errors, [])
  assert.deepEqual(s.data, [a, b].map((row) => ({ id: String(row.id), data: row })))
})

await step('subscription counter 1..3: onStarted, tracked onData {id,data}, onStopped, onComplete', async () => {
  const from = log.frames.length
  const s = subscribe(client, 'counter', { from: 1, to: 3, delayMs: 10 })
  await s.waitFor((s) => s.completed || s.errors.length, 'completion')
  assert.deepEqual(s.errors, [])
  assert.equal(s.started, 1)
  assert.equal(s.stopped, true, 'onStopped was not called')
  assert.deepEqual(s.data, [1, 2, 3].map((n) => ({ id: String(n), data: { n } })))
  const { id } = sentSince(log, from).find((m) => m.method === 'subscription')
  const types = receivedSince(log, from)
    .filter((m) => m.id === id)
    .map((m) => m.result?.type ?? 'error')
  assert.deepEqual(types, ['started', 'data', 'data', 'data', 'stopped'])
})

await step('subscription counter with lastEventId "2" in the input resumes after 2: only {id:"3"}', async () => {
  const s = subscribe(client, 'counter', { from: 1, to: 3, delayMs: 10, lastEventId: '2' })
  await s.waitFor((s) => s.completed || s.errors.length, 'completion')
  assert.deepEqual(s.errors, [])
  assert.deepEqual(s.data, [{ id: '3', data: { n: 3 } }])
})

// An error ends a subscription over WebSocket, 4xx and 5xx alike: the client calls onError and
// never sends the subscription again (it resubscribes only when a socket is replaced).
const failingStep = (proc, expected) =>
  step(`${proc}: onData {n:1}, then onError ${expected.code}/${expected.httpStatus} "${expected.message}", not resubscribed`, async () => {
    const from = log.frames.length
    const s = subscribe(client, proc)
    await s.waitFor((s) => s.errors.length || s.completed, 'onError')
    assert.deepEqual(s.data, [{ n: 1 }])
    assertTrpcError(s.errors[0], expected)
    assert.equal(s.errors[0].data?.path, proc)
    await sleep(1000) // a resubscription would go out in this time
    const subscriptions = sentSince(log, from).filter((m) => m.method === 'subscription')
    assert.equal(subscriptions.length, 1, `the subscription was sent ${subscriptions.length} times`)
    assert.equal(s.started, 1)
    assert.equal(s.errors.length, 1)
  })
await failingStep('failing', { code: 'BAD_REQUEST', httpStatus: 400, shapeCode: -32600, message: 'nope' })
await failingStep('failing5xx', { code: 'INTERNAL_SERVER_ERROR', httpStatus: 500, shapeCode: -32603, message: 'boom' })

await step('unknown path: a query and a subscription get NOT_FOUND/404', async () => {
  const err = await rejection(client.nope.query({ x: 1 }), 'query nope')
  assertTrpcError(err, { code: 'NOT_FOUND', httpStatus: 404, shapeCode: -32004, message: 'No "query"-procedure on path "nope"' })
  const s = subscribe(client, 'nope.live')
  await s.waitFor((s) => s.errors.length || s.completed, 'onError')
  assertTrpcError(s.errors[0], { code: 'NOT_FOUND', httpStatus: 404, shapeCode: -32004 })
  assert.equal(s.started, 0)
  // the socket is still good
  assert.deepEqual(await withTimeout(client.ping.query({ n: 3 }), 5000, 'ping'), { n: 3 })
})

await step(`unsubscribe: sends subscription.stop, the server answers stopped${CLEANUP_URL ? ' and drops the handler' : ''}`, async () => {
  const baseline = CLEANUP_URL ? await settled(CLEANUP_URL) : undefined
  const from = log.frames.length
  const s = subscribe(client, 'post.live')
  await s.waitFor((s) => s.started, 'onStarted')
  if (CLEANUP_URL) await poll(CLEANUP_URL, (n) => n === baseline + 1, 'server sees the open subscription')
  s.sub.unsubscribe()
  const { id } = sentSince(log, from).find((m) => m.method === 'subscription')
  assert.ok(
    sentSince(log, from).some((m) => m.method === 'subscription.stop' && m.id === id),
    'no subscription.stop was sent',
  )
  await until(
    () => receivedSince(log, from).some((m) => m.id === id && m.result?.type === 'stopped'),
    'the server to answer the stop with stopped',
    log.describe,
    3000,
  )
  if (CLEANUP_URL) await poll(CLEANUP_URL, (n) => n === baseline, 'server cleaned the subscription up')
})
if (CLEANUP_URL) {
  await step('closing the client with a live subscription: the server drops the handler', async () => {
    const baseline = await settled(CLEANUP_URL)
    const c = trpcClient()
    const s = subscribe(c.client, 'post.live')
    await s.waitFor((s) => s.started, 'onStarted')
    await poll(CLEANUP_URL, (n) => n === baseline + 1, 'server sees the open subscription')
    await withTimeout(c.wsClient.close(), 5000, 'wsClient.close()')
    await until(() => c.log.sockets[0].closed, 'the socket to close', c.log.describe, 3000)
    await poll(CLEANUP_URL, (n) => n === baseline, 'server cleaned the subscription up')
    assert.equal(s.completed, true, 'close() did not complete the subscription')
  })
} else {
  console.log('skip server-side cleanup observation (CLEANUP_URL not set)')
}

await step('connectionParams: ?connectionParams=1 in the URL, the params as the first frame, then calls work', async () => {
  const c = trpcClient({ connectionParams: { hello: 'world' } })
  assert.deepEqual(await withTimeout(c.client.ping.query({ n: 4 }), 5000, 'ping'), { n: 4 })
  assert.match(c.log.sockets[0].url, /\?connectionParams=1$/)
  assert.deepEqual(JSON.parse(c.log.frames.find((f) => f.dir === 'out').data), {
    method: 'connectionParams',
    data: { hello: 'world' },
  })
  await c.wsClient.close()
})

if (AUTH_PROCEDURES) {
  await step('connectionParams authorization "Bearer ann": me answers {name:"ann"}; without it UNAUTHORIZED/401', async () => {
    const ann = trpcClient({ connectionParams: { authorization: 'Bearer ann' } })
    assert.deepEqual(await withTimeout(ann.client.me.query(), 5000, 'me'), { name: 'ann' })
    const err = await rejection(client.me.query(), 'me without a token')
    assertTrpcError(err, { code: 'UNAUTHORIZED', httpStatus: 401, shapeCode: -32001 })
    await ann.wsClient.close()
  })

  await step('connectionParams authorization "Bearer " (malformed): me and ping get UNAUTHORIZED/401', async () => {
    const bad = trpcClient({ connectionParams: { authorization: 'Bearer ' } })
    assertTrpcError(await rejection(bad.client.me.query(), 'me with a malformed token'), {
      code: 'UNAUTHORIZED',
      httpStatus: 401,
      shapeCode: -32001,
    })
    // a bad credential is never taken for none: every call on that socket is refused
    assertTrpcError(await rejection(bad.client.ping.query({ n: 1 }), 'ping with a malformed token'), {
      code: 'UNAUTHORIZED',
      httpStatus: 401,
      shapeCode: -32001,
    })
    await bad.wsClient.close()
  })

  await step('mentions.live with connectionParams "Bearer ann" receives the post titled "hi @ann", not one for @bob', async () => {
    const ann = trpcClient({ connectionParams: { authorization: 'Bearer ann' } })
    const s = subscribe(ann.client, 'mentions.live')
    await s.waitFor((s) => s.started || s.errors.length, 'onStarted')
    assert.deepEqual(s.errors, [])
    await sleep(100) // let the server subscribe before publishing
    await client.post.create.mutate({ title: 'hi @bob' })
    const row = await client.post.create.mutate({ title: 'hi @ann' })
    await s.waitFor((s) => s.data.length >= 1, 'the mention of @ann')
    await sleep(100) // a mention of @bob would show up here
    s.sub.unsubscribe()
    assert.deepEqual(s.data, [{ id: String(row.id), data: row }])
    await ann.wsClient.close()
  })
} else {
  console.log('skip auth steps (AUTH_PROCEDURES not set)')
}

if (DROP_URL) {
  await step('drop: the client reconnects, resubscribes with lastEventId, every post arrives once, in order', async () => {
    const baseline = CLEANUP_URL ? await settled(CLEANUP_URL) : undefined
    // The subscriber's reconnect waits on `gate` (createWSClient awaits a `url` function before
    // each socket), so the posts made after the cut are made while it has no socket at all.
    let gate = Promise.resolve()
    let open
    const sub = trpcClient({ url: async () => (await gate, base), retryDelayMs: () => 100 })
    const s = subscribe(sub.client, 'post.live')
    await s.waitFor((s) => s.started, 'onStarted')
    await sleep(100) // let the server subscribe before publishing
    const a = await client.post.create.mutate({ title: 'drop-a' })
    const b = await client.post.create.mutate({ title: 'drop-b' })
    await s.waitFor((s) => s.data.length >= 2, 'the posts before the cut')
    const { id } = sub.log.messages('out').find((m) => m.message.method === 'subscription').message
    gate = new Promise((resolve) => (open = resolve))
    const mainSockets = log.sockets.length
    await postDrop(DROP_URL)
    await until(() => sub.log.sockets[0].closed, 'the cut to close the subscriber socket', sub.log.describe, 5000)
    // the main client reconnects by itself (its first retry is at once); wait until it has
    await until(() => log.sockets[mainSockets - 1].closed, 'the cut to close the main socket', log.describe, 5000)
    const c = await withTimeout(client.post.create.mutate({ title: 'drop-c' }), 10000, 'post.create after the cut')
    const d = await withTimeout(client.post.create.mutate({ title: 'drop-d' }), 5000, 'post.create after the cut')
    assert.equal(sub.log.sockets.length, 1, 'the subscriber reconnected before the gate opened')
    open()
    await s.waitFor((s) => s.data.length >= 4, 'the posts made while the subscriber was away', 10000)
    const e = await client.post.create.mutate({ title: 'drop-e' })
    await s.waitFor((s) => s.data.length >= 5, 'a post made after the reconnect')
    await sleep(200) // a duplicate would show up here
    s.sub.unsubscribe()
    assert.deepEqual(s.errors, [])
    assert.deepEqual(
      s.data.map((d) => d.id),
      [a, b, c, d, e].map((row) => String(row.id)),
      'not every post exactly once, in order',
    )
    assert.deepEqual(s.data, [a, b, c, d, e].map((row) => ({ id: String(row.id), data: row })))
    const closed = sub.log.sockets[0].closed
    assert.equal(closed.code, 1006, `the cut was not abrupt: close ${JSON.stringify(closed)}`)
    const again = sub.log.messages('out').filter((m) => m.conn === 2 && m.message.method === 'subscription')
    assert.equal(again.length, 1, `expected one resubscription on the new socket, saw ${again.length}`)
    assert.deepEqual(again[0].message, { id, method: 'subscription', params: { path: 'post.live', lastEventId: String(b.id) } })
    if (CLEANUP_URL) await poll(CLEANUP_URL, (n) => n === baseline, 'server cleaned the resumed subscription up')
    await sub.wsClient.close()
    check(`drop observed: cut seen as close ${closed.code}; resubscribed ${JSON.stringify(again[0].message)}`)
  })
} else {
  console.log('skip drop/reconnect (DROP_URL not set)')
}

await step('lazy: no socket until the first call, closed when idle, the next call opens a new one', async () => {
  const lazy = trpcClient({ lazy: { enabled: true, closeMs: 300 } })
  await sleep(200)
  assert.equal(lazy.log.sockets.length, 0, 'a lazy client opened a socket before any call')
  assert.deepEqual(await withTimeout(lazy.client.ping.query({ n: 1 }), 5000, 'first ping'), { n: 1 })
  assert.equal(lazy.log.sockets.length, 1)
  await until(() => lazy.log.sockets[0].closed, 'the idle socket to close', lazy.log.describe, 3000)
  assert.deepEqual(await withTimeout(lazy.client.ping.query({ n: 2 }), 5000, 'second ping'), { n: 2 })
  assert.equal(lazy.log.sockets.length, 2, 'the second call did not open a new socket')
  const [first, second] = lazy.log.messages('out')
  assert.deepEqual([first.conn, second.conn], [1, 2])
  assert.equal(second.message.id, first.message.id + 1, 'request ids do not go on counting across sockets')
  await until(() => lazy.log.sockets[1].closed, 'the second idle socket to close', lazy.log.describe, 3000)
  const codes = lazy.log.sockets.map((s) => s.closed.code)
  // The client closes with no status code: a server that answers the close handshake gives
  // 1005 here, one that drops the connection instead 1006.
  assert.deepEqual(codes, [1005, 1005], `the lazy closes were not answered with a close frame: ${JSON.stringify(codes)}`)
})

for (const c of clients) await withTimeout(c.close(), 5000, 'closing the clients').catch(() => {})
// Whoever runs this may check the server's count next: leave it with no stream open.
if (CLEANUP_URL) await settled(CLEANUP_URL).catch((e) => fail(`after the last step: ${e.message}`))
console.log('trpc-ws: all checks passed')
process.exit(0)
