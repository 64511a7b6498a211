// Shared helpers for the interop scripts: one printed line per passing check, exit 1 on the first
// failure, timeouts instead of hangs, and the DROP_URL / CLEANUP_URL contract (see README.md).

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
