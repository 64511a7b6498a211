// Shared helpers for the interop scripts: one printed line per passing check, exit 1 on the first
// failure, timeouts instead of hangs, and the DROP_URL / CLEANUP_URL contract (see README.md).
// Also the oRPC-over-HTTP steps that orpc.mjs (`@orpc/client` 1.x) and orpc-v2.mjs (2.x) share.

import assert from 'node:assert/strict'

export function fail(message) {
  console.error(`FAIL ${message}`)
  process.exit(1)
}

export function check(name) {
  console.log(`ok   ${name}`)
}

export async function step(name, fn) {
  try {
    await fn()
  } catch (err) {
    const detail = err?.stack && !err?.generatedMessage ? err.stack : err?.message ?? String(err)
    fail(`${name}\n     ${String(detail).replace(/\n/g, '\n     ')}`)
  }
  check(name)
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Polls `pred` every 10 ms until it holds; after `ms`, fails saying what it waited for and what
// `seen()` shows.
export async function until(pred, what, seen, ms) {
  const deadline = Date.now() + ms
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; saw ${seen()}`)
    await sleep(10)
  }
}

// Records every callback of one tRPC subscription of `procedure` (a client's procedure, e.g.
// `client.post.live`); `waitFor(pred, what, ms)` polls the record, `ms` defaulting to `waitMs`.
export function recordSubscription(procedure, input, { context, waitMs = 5000 } = {}) {
  const s = { started: 0, data: [], errors: [], completed: false, stopped: false, states: [], eventSource: null }
  s.sub = procedure.subscribe(input, {
    context,
    onStarted: ({ context }) => {
      s.started++
      s.eventSource = context?.eventSource ?? s.eventSource
    },
    onData: (d) => s.data.push(d),
    onError: (e) => s.errors.push(e),
    onComplete: () => (s.completed = true),
    onStopped: () => (s.stopped = true),
    onConnectionStateChange: (st) => s.states.push(st.state),
  })
  const describe = () =>
    JSON.stringify({ started: s.started, data: s.data, errors: s.errors.map((e) => e.message), completed: s.completed, states: s.states })
  s.waitFor = (pred, what, ms = waitMs) => until(() => pred(s), what, describe, ms)
  return s
}

export function withTimeout(promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

// DROP_URL: POST (empty body) makes the server drop every open stream abruptly, as a network
// failure would: the connection is closed without ending the response (no final chunk).
export async function postDrop(url) {
  const res = await fetch(url, { method: 'POST' })
  if (!res.ok) throw new Error(`POST ${url} answered ${res.status}`)
  await res.arrayBuffer()
}

// CLEANUP_URL: GET answers {"active_streams": n}, the number of streams whose handler is still
// alive (not yet dropped / cleaned up) on the server.
export async function readCleanup(url) {
  const res = await fetch(url)
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}`)
  const body = await res.json()
  if (typeof body?.active_streams !== 'number') {
    throw new Error(`GET ${url} did not answer {"active_streams": n}: ${JSON.stringify(body)}`)
  }
  return body
}

export async function poll(url, predicate, what, ms = 3000) {
  const deadline = Date.now() + ms
  let last
  while (Date.now() < deadline) {
    last = (await readCleanup(url)).active_streams
    if (predicate(last)) return last
    await sleep(50)
  }
  throw new Error(`timed out after ${ms} ms waiting until ${what} (active_streams is ${last})`)
}

// The baseline of a step that observes cleanup through CLEANUP_URL: 0, once the server has
// cleaned up every stream the earlier steps opened. The script is the server's only client and
// each step closes its streams before it ends, but the server sees a closed connection a moment
// after the client closes it (on a busy machine, longer than the next step takes to start). So a
// count read straight away can still include the previous step's stream: the step would then
// wait for the count to come back to a baseline one too high, which never happens, or see its own
// stream as that earlier one closing. Waiting for 0 first leaves the step only its own streams.
export async function settled(url) {
  await poll(url, (n) => n === 0, 'the server cleaned up the streams of earlier steps')
  return 0
}

// A WebSocket class (a subclass of `BaseWebSocket`, the `ws` package's) that records what goes
// over each socket it makes, for the WebSocket scripts: give `log.WebSocket` to the client (tRPC's
// `createWSClient({ WebSocket })`, or `new log.WebSocket(url)` for oRPC's link). `log.sockets`
// holds one entry per socket made, in order ({n, url, opened, closed: {code, reason} | null}),
// `log.frames` every text frame sent (`dir: 'out'`) or received (`dir: 'in'`) as {conn, dir, data};
// binary frames are recorded with `binary: true` and their bytes as hex.
export function frameLog(BaseWebSocket) {
  const log = { sockets: [], frames: [] }
  const text = (data) =>
    Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
  log.WebSocket = class LoggingWebSocket extends BaseWebSocket {
    constructor(url, protocols, options) {
      super(url, protocols, options)
      const conn = { n: log.sockets.length + 1, url: String(url), opened: false, closed: null }
      log.sockets.push(conn)
      this._frameLogConn = conn
      this.on('open', () => (conn.opened = true))
      this.on('message', (data, isBinary) =>
        log.frames.push({ conn: conn.n, dir: 'in', binary: isBinary, data: text(data).toString(isBinary ? 'hex' : 'utf8') }),
      )
      this.on('close', (code, reason) => (conn.closed = { code, reason: reason.toString('utf8') }))
    }
    send(data, ...rest) {
      const binary = typeof data !== 'string'
      log.frames.push({ conn: this._frameLogConn.n, dir: 'out', binary, data: binary ? text(data).toString('hex') : data })
      return super.send(data, ...rest)
    }
  }
  // The JSON messages of one direction ('out' | 'in'), a batch frame's items each on their own,
  // from frame index `from` on; bare texts (PING / PONG) and binary frames are left out.
  log.messages = (dir, from = 0) =>
    log.frames
      .slice(from)
      .filter((f) => f.dir === dir && !f.binary && f.data !== 'PING' && f.data !== 'PONG')
      .flatMap((f) => {
        const m = JSON.parse(f.data)
        return (Array.isArray(m) ? m : [m]).map((message) => ({ conn: f.conn, message }))
      })
  log.open = () => log.sockets.filter((s) => s.opened && !s.closed)
  log.describe = () => JSON.stringify({ sockets: log.sockets, frames: log.frames.slice(-12) })
  return log
}

// ---- oRPC over HTTP: what orpc.mjs (`@orpc/client` 1.x) and orpc-v2.mjs (2.x) share ----

// The requests an oRPC link made, recorded by the `fetch` it was given (`log.record(...)` wraps
// the real fetch): one {path, search, method, lastEventId, authorization, contentType, body,
// status, answerType} per request, in order. `body` is what the link handed to fetch (2.x's
// link: a string or undefined; 1.x hands a `Request`, whose body is not read: null); `status`
// and `answerType` (the answer's content-type, null without one) fill in when the answer's head
// arrives.
export function requestLog() {
  const log = []
  log.record = (url, method, headers, body, response) => {
    const u = new URL(url)
    const entry = {
      path: u.pathname,
      search: u.search,
      method,
      lastEventId: headers.get('last-event-id'),
      authorization: headers.get('authorization'),
      contentType: headers.get('content-type'),
      body,
      status: null,
      answerType: null,
    }
    log.push(entry)
    return response.then((res) => {
      entry.status = res.status
      entry.answerType = res.headers.get('content-type')
      return res
    })
  }
  log.to = (suffix) => log.filter((r) => r.path.endsWith(suffix))
  return log
}

// Awaits `promise` (a call, or an iterator's next()) and returns what it threw; fails if it
// resolved instead.
export const thrown = (promise, what, ms = 5000) =>
  withTimeout(promise, ms, what).then(
    (r) => assert.fail(`expected ${what} to throw, got ${JSON.stringify(r) ?? r?.constructor?.name}`),
    (e) => e,
  )

// The steps of orpc.mjs, for either major version of `@orpc/client`, in order. `v` says what
// differs between the versions:
// - `client`, `ORPCError`, `getEventMeta`: the version's own; the client's link records every
//   request in `requests` (a `requestLog()`) and sends `context.token` as `authorization:
//   Bearer <token>`, and its retry plugin retries a call `context.retry` times (0 by default);
// - `expectError(err, {code, status, message?, data?, defined?})`: asserts an ORPCError as that
//   version shows it (1.x: with `status`; 2.x: `inferable` and no `status`);
// - `statusOf(err)`: the HTTP status a caller reads off an ORPCError (1.x: `err.status`; 2.x:
//   the code's status, as the client maps it);
// - `retryPlugin`: the retry plugin's name, for the step names (1.x `ClientRetryPlugin`, 2.x
//   `RetryLinkPlugin`);
// - `env`: DROP_URL, CLEANUP_URL, AUTH_PROCEDURES (see README.md).
export async function orpcHttpSteps(v) {
  const { client, ORPCError, getEventMeta, requests, expectError, statusOf } = v
  const { DROP_URL, CLEANUP_URL, AUTH_PROCEDURES } = v.env
  // Read the next value of an event iterator, failing clearly instead of hanging.
  const next = (it, what, ms = 5000) => withTimeout(it.next(), ms, what)
  // Everything an iterator gives until it ends: its values, and the error it ended with.
  const drain = async (it, what) => {
    const values = []
    for (;;) {
      try {
        const r = await next(it, what)
        if (r.done) return { values, error: null }
        values.push(r.value)
      } catch (error) {
        return { values, error }
      }
    }
  }

  await step('unary ping {n:1} returns {n:1}', async () => {
    assert.deepEqual(await withTimeout(client.ping({ n: 1 }), 5000, 'ping'), { n: 1 })
  })

  await step('unary post.create {title} returns {id:number, title}', async () => {
    const row = await withTimeout(client.post.create({ title: 'interop' }), 5000, 'post.create')
    assert.equal(typeof row.id, 'number')
    assert.equal(row.title, 'interop')
  })

  await step('failing: value {n:1}, then ORPCError BAD_REQUEST/400 "nope" data {why:"x"}', async () => {
    const it = await withTimeout(client.failing(), 5000, 'failing call')
    assert.deepEqual(await next(it, 'failing first value'), { done: false, value: { n: 1 } })
    const err = await thrown(it.next(), 'failing error')
    expectError(err, { code: 'BAD_REQUEST', status: 400, message: 'nope', data: { why: 'x' }, defined: false })
    // the error came inside the event stream, whose answer was a 200
    assert.equal(requests.to('/failing').at(-1).status, 200)
  })

  await step('failing5xx: value {n:1}, then ORPCError INTERNAL_SERVER_ERROR/500 "boom"', async () => {
    const it = await withTimeout(client.failing5xx(), 5000, 'failing5xx call')
    assert.deepEqual(await next(it, 'failing5xx first value'), { done: false, value: { n: 1 } })
    const err = await thrown(it.next(), 'failing5xx error')
    expectError(err, { code: 'INTERNAL_SERVER_ERROR', status: 500, message: 'boom', defined: false })
  })

  // The retry plugin retries whatever an iterator throws unless shouldRetry says no; one that
  // spares statuses below 500 retries a 5xx and not a 4xx. Each retry is a new request.
  const spare4xx = ({ error }) => !(error instanceof ORPCError && statusOf(error) < 500)
  const retried = async (proc, context) => {
    const before = requests.to(`/${proc}`).length
    const it = await withTimeout(client[proc](undefined, { context }), 5000, `${proc} call`)
    const out = await drain(it, proc)
    return { ...out, requests: requests.to(`/${proc}`).length - before }
  }

  await step('failing, retry 2 with shouldRetry sparing 4xx: one request, the BAD_REQUEST is not retried', async () => {
    const { values, error, requests: made } = await retried('failing', { retry: 2, retryDelay: 50, shouldRetry: spare4xx })
    expectError(error, { code: 'BAD_REQUEST', status: 400 })
    assert.deepEqual(values, [{ n: 1 }])
    assert.equal(made, 1)
  })

  await step('failing5xx, retry 2 with shouldRetry sparing 4xx: retried, 3 requests, then INTERNAL_SERVER_ERROR', async () => {
    const { values, error, requests: made } = await retried('failing5xx', { retry: 2, retryDelay: 50, shouldRetry: spare4xx })
    expectError(error, { code: 'INTERNAL_SERVER_ERROR', status: 500 })
    assert.deepEqual(values, [{ n: 1 }, { n: 1 }, { n: 1 }])
    assert.equal(made, 3)
  })

  await step('unknown path: ORPCError NOT_FOUND/404', async () => {
    const err = await thrown(client.nope({ x: 1 }), 'nope')
    expectError(err, { code: 'NOT_FOUND', status: 404 })
    assert.equal(requests.to('/nope').at(-1).status, 404)
  })

  await step('counter 1..3: values {n}, ids "1","2","3", retry 1000, return value {done:true}', async () => {
    const it = await withTimeout(client.counter({ from: 1, to: 3, delayMs: 10 }), 5000, 'counter call')
    for (const n of [1, 2, 3]) {
      const r = await next(it, `counter value ${n}`)
      assert.equal(r.done, false)
      assert.deepEqual(r.value, { n })
      // getEventMeta gives the event's id and retry
      const meta = getEventMeta(r.value)
      assert.equal(meta?.id, String(n))
      assert.equal(meta?.retry, 1000)
    }
    const end = await next(it, 'counter return')
    assert.deepEqual(end, { done: true, value: { done: true } })
  })

  await step('counter resumed with lastEventId "2" (last-event-id header): only {n:3}', async () => {
    const before = requests.length
    const it = await withTimeout(
      client.counter({ from: 1, to: 3, delayMs: 10 }, { lastEventId: '2' }),
      5000,
      'counter call',
    )
    assert.equal(requests[before].lastEventId, '2', 'client did not send last-event-id: 2')
    const { values, error } = await drain(it, 'counter value')
    assert.equal(error, null)
    assert.deepEqual(values, [{ n: 3 }])
  })

  await step('post.live (retry 3) receives posts created while it reads, with their ids', async () => {
    const ac = new AbortController()
    const it = await withTimeout(
      client.post.live(undefined, { signal: ac.signal, context: { retry: 3 } }),
      5000,
      'post.live call',
    )
    await sleep(200) // let the server subscribe before publishing
    const a = await client.post.create({ title: 'live-a' })
    const b = await client.post.create({ title: 'live-b' })
    for (const row of [a, b]) {
      const r = await next(it, `live post ${row.id}`)
      assert.deepEqual(r.value, row)
      assert.equal(getEventMeta(r.value)?.id, String(row.id))
    }
    ac.abort()
  })

  if (DROP_URL) {
    await step('drop: after the server drops the stream, the client reconnects with last-event-id and misses nothing', async () => {
      const ac = new AbortController()
      const before = requests.to('/post/live').length
      const it = await withTimeout(
        client.post.live(undefined, { signal: ac.signal, context: { retry: 3 } }),
        5000,
        'post.live call',
      )
      await sleep(200)
      const a = await client.post.create({ title: 'drop-a' })
      assert.deepEqual((await next(it, 'post before drop')).value, a)
      await postDrop(DROP_URL)
      const b = await client.post.create({ title: 'drop-b' }) // created while disconnected
      // the retry plugin waits for the last event's retry (none here: 2000 ms) before reconnecting
      assert.deepEqual((await next(it, 'post created during the drop', 10000)).value, b)
      const c = await client.post.create({ title: 'drop-c' })
      assert.deepEqual((await next(it, 'post after reconnect', 10000)).value, c)
      const live = requests.to('/post/live').slice(before)
      assert.ok(live.length >= 2, `expected a reconnect, saw ${live.length} post.live request(s)`)
      assert.equal(live[1].lastEventId, String(a.id), 'reconnect did not carry last-event-id')
      ac.abort()
    })
  } else {
    console.log('skip drop/reconnect (DROP_URL not set)')
  }

  // AUTH_PROCEDURES: the server has Outer's chat procedures behind a bearer token (`me`,
  // `mentions.live`); the reference servers do not, so these steps run only when it is set.
  if (AUTH_PROCEDURES) {
    // The call itself rejects: the 401 comes back as the HTTP status of the call, before any
    // stream. mentions.live declares UNAUTHORIZED (`.declares`), so it comes marked defined:
    // what oRPC's `isDefinedError` narrows on.
    const unauthorized = async (context) => {
      const before = requests.to('/mentions/live').length
      const err = await thrown(client.mentions.live(undefined, { context }), 'mentions.live call', 15000)
      expectError(err, { code: 'UNAUTHORIZED', status: 401, defined: true })
      assert.equal(typeof err.message, 'string')
      const made = requests.to('/mentions/live').slice(before)
      assert.ok(made.every((r) => r.authorization === null), 'a token was sent')
      assert.ok(made.every((r) => r.status === 401), `answers ${made.map((r) => r.status)}`)
      return { err, requests: made.length }
    }

    await step('me: without a token ORPCError UNAUTHORIZED/401; with Bearer ann {name:"ann"}', async () => {
      const err = await thrown(client.me(), 'me')
      expectError(err, { code: 'UNAUTHORIZED', status: 401, defined: true })
      assert.equal(requests.to('/me').at(-1).status, 401)
      assert.deepEqual(await withTimeout(client.me(undefined, { context: { token: 'ann' } }), 5000, 'me'), { name: 'ann' })
    })

    await step('mentions.live without a token: the call rejects with ORPCError UNAUTHORIZED/401, one request', async () => {
      assert.equal((await unauthorized({})).requests, 1)
    })

    // The retry plugin retries whatever error the call throws unless shouldRetry says
    // otherwise: with retry: 3 it makes 3 more requests for a 401, each refused the same way.
    await step(`mentions.live without a token, retry 3: ${v.retryPlugin} retries the 401 (4 requests, each 401)`, async () => {
      const { requests: made } = await unauthorized({ retry: 3, retryDelay: 50 })
      assert.equal(made, 4)
    })

    // The status is what lets a client tell "refused" from "failed": a shouldRetry that
    // leaves 4xx alone gives up after one request.
    await step('mentions.live without a token, retry 3 with shouldRetry sparing 4xx: one request, no retry', async () => {
      const { requests: made } = await unauthorized({ retry: 3, retryDelay: 50, shouldRetry: spare4xx })
      assert.equal(made, 1)
    })

    await step('mentions.live with authorization: Bearer ann receives a post titled "hi @ann", not one for @bob', async () => {
      const ac = new AbortController()
      const before = requests.to('/mentions/live').length
      const it = await withTimeout(
        client.mentions.live(undefined, { signal: ac.signal, context: { token: 'ann' } }),
        5000,
        'mentions.live call',
      )
      assert.equal(requests.to('/mentions/live')[before]?.authorization, 'Bearer ann')
      await sleep(200) // let the server subscribe before publishing
      await client.post.create({ title: 'hi @bob' })
      const ann = await client.post.create({ title: 'hi @ann' })
      const r = await next(it, 'the mention of @ann')
      assert.equal(r.done, false)
      assert.deepEqual(r.value, ann)
      assert.equal(getEventMeta(r.value)?.id, String(ann.id))
      ac.abort()
      await it.return?.().catch(() => {})
    })
  } else {
    console.log('skip auth steps (AUTH_PROCEDURES not set)')
  }

  await step('abort: aborting a post.live call ends the client iterator', async () => {
    const ac = new AbortController()
    const baseline = CLEANUP_URL ? await settled(CLEANUP_URL) : undefined
    const it = await withTimeout(client.post.live(undefined, { signal: ac.signal }), 5000, 'post.live call')
    if (CLEANUP_URL) await poll(CLEANUP_URL, (n) => n === baseline + 1, 'server sees the open stream')
    const pending = it.next()
    ac.abort()
    const outcome = await withTimeout(
      pending.then(
        (r) => `returned ${JSON.stringify(r)}`,
        (e) => `threw ${e?.name}`,
      ),
      3000,
      'iterator end after abort',
    )
    assert.ok(/AbortError|"done":true/.test(outcome), `unexpected end after abort: ${outcome}`)
    check(`abort observed: iterator ${outcome}`)
    if (CLEANUP_URL) await poll(CLEANUP_URL, (n) => n === baseline, 'server cleaned the stream up')
  })
  if (!CLEANUP_URL) console.log('skip server-side cleanup observation (CLEANUP_URL not set)')
}
