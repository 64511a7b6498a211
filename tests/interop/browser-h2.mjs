// Many event streams on one page, in headless Chromium: over TLS the browser and the server agree
// on HTTP/2 (ALPN), and one connection carries every stream, so a page may hold more EventSources
// than HTTP/1.1's six connections per host. The page opens 20 EventSources on /trpc/post.live,
// waits until every one is connected, makes one post (oRPC `POST /rpc/post/create`), and every
// one of the 20 receives it. Chromium trusts the test's self-signed server certificate through
// its key (chromium.mjs).
//
//   node browser-h2.mjs <https page url> <server cert PEM> [<http page url>]
//
// With the third argument, the contrast: the same 20 EventSources on a page served over
// cleartext HTTP/1.1 get exactly six streams open, the others wait for a connection.
// The pages are any page of the chat's origin that opens no stream of its own (the test serves an
// empty one; the chat's /chat.js will do). The server must have its test hooks (/__test). It
// prints one `ok …` line per check and exits non-zero on failure.
import assert from 'node:assert/strict'
import { launchChromium } from './chromium.mjs'

const [url, cert, plainUrl] = process.argv.slice(2)
if (!url || !cert) {
  console.error('usage: node browser-h2.mjs <https page url> <server cert PEM> [<http page url>]')
  process.exit(2)
}
const STREAMS = 20
const WAIT = 15_000
const LIVE = '/trpc/post.live'

// Opens `n` EventSources on `path` in the page; each records whether tRPC's `connected` event
// came (the server has subscribed: a post made after it is delivered) and the titles it received.
const openStreams = (page, n) =>
  page.evaluate(
    ({ n, path }) => {
      window.streams = Array.from({ length: n }, () => {
        const stream = { es: new EventSource(path), connected: false, titles: [], errors: 0 }
        stream.es.addEventListener('connected', () => (stream.connected = true))
        stream.es.addEventListener('message', (event) => stream.titles.push(JSON.parse(event.data).title))
        stream.es.onerror = () => stream.errors++
        return stream
      })
    },
    { n, path: LIVE },
  )
const connected = (page) => page.evaluate(() => window.streams.filter((s) => s.connected).length)
const closeStreams = (page) => page.evaluate(() => window.streams.forEach((s) => s.es.close()))

// What the browser says about each response on the stream path: the protocol it spoke and the
// connection it used (Chrome DevTools Protocol, `Network.responseReceived`).
async function watchResponses(page) {
  const seen = []
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Network.enable')
  cdp.on('Network.responseReceived', ({ response }) => {
    seen.push({
      path: new URL(response.url).pathname,
      status: response.status,
      protocol: response.protocol,
      connection: response.connectionId,
    })
  })
  return seen
}

const browser = await launchChromium({ trust: cert })
try {
  const page = await browser.newPage()
  const responses = await watchResponses(page)
  await page.goto(url)
  const navigation = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol)
  assert.equal(navigation, 'h2', 'the page itself came over HTTP/2')
  console.log(`ok   the page loads over TLS, its certificate trusted, over HTTP/2 (nextHopProtocol ${navigation})`)

  await openStreams(page, STREAMS)
  await page.waitForFunction((n) => window.streams.filter((s) => s.connected).length === n, STREAMS, { timeout: WAIT })
  const hooks = await page.evaluate(() => fetch('/__test/streams').then((r) => r.json()))
  assert.equal(hooks.active_streams, STREAMS, 'the server holds every stream open')
  console.log(`ok   ${STREAMS} EventSources on ${LIVE} are connected at once; the server counts ${hooks.active_streams} open streams`)

  const title = `to all ${STREAMS}`
  const made = await page.evaluate(async (title) => {
    const res = await fetch('/rpc/post/create', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ json: { title } }),
    })
    return { status: res.status, body: await res.json() }
  }, title)
  assert.equal(made.status, 200)
  assert.equal(made.body.json.title, title)
  await page.waitForFunction(
    (title) => window.streams.every((s) => s.titles.length === 1 && s.titles[0] === title),
    title,
    { timeout: WAIT },
  )
  assert.equal(await page.evaluate(() => window.streams.reduce((n, s) => n + s.errors, 0)), 0, 'no stream failed')
  console.log(`ok   one post (POST /rpc/post/create) reaches every one of the ${STREAMS} EventSources, once`)

  const live = responses.filter((r) => r.path === LIVE)
  assert.equal(live.length, STREAMS, `one response per EventSource: ${JSON.stringify(live)}`)
  assert.ok(live.every((r) => r.status === 200 && r.protocol === 'h2'), `every stream is HTTP/2: ${JSON.stringify(live)}`)
  const connections = new Set(responses.map((r) => r.connection))
  assert.equal(connections.size, 1, `one connection for the page, the streams and the post: ${JSON.stringify(responses)}`)
  // The page's own view: Resource Timing has an entry for a request once it has ended, so the
  // streams' entries come when they are closed.
  await closeStreams(page)
  const entries = () =>
    page.evaluate(() =>
      performance.getEntriesByType('resource').map((e) => ({ path: new URL(e.name).pathname, protocol: e.nextHopProtocol })),
    )
  await page.waitForFunction(
    ({ n, path }) => performance.getEntriesByType('resource').filter((e) => new URL(e.name).pathname === path).length === n,
    { n: STREAMS, path: LIVE },
    { timeout: WAIT },
  )
  const fetched = await entries()
  const protocols = (path) => [...new Set(fetched.filter((e) => e.path === path).map((e) => e.protocol))]
  assert.deepEqual(protocols(LIVE), ['h2'], `the streams' nextHopProtocol: ${JSON.stringify(fetched)}`)
  assert.deepEqual(protocols('/rpc/post/create'), ['h2'], `the post's nextHopProtocol: ${JSON.stringify(fetched)}`)
  console.log(`ok   the ${STREAMS} streams and the post share one HTTP/2 connection (each response h2, nextHopProtocol h2)`)

  if (plainUrl) {
    const plain = await browser.newPage()
    const plainResponses = await watchResponses(plain)
    await plain.goto(plainUrl)
    await openStreams(plain, STREAMS)
    await plain.waitForFunction(() => window.streams.filter((s) => s.connected).length >= 6, null, { timeout: WAIT })
    // The rest wait for one of the six connections, which never frees up: give them a moment.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const open = await connected(plain)
    assert.equal(open, 6, 'six connections per host over HTTP/1.1')
    const protocols = [...new Set(plainResponses.filter((r) => r.path === LIVE).map((r) => r.protocol))]
    assert.deepEqual(protocols, ['http/1.1'])
    console.log(`ok   the contrast: over cleartext HTTP/1.1 the same page gets only ${open} of its ${STREAMS} EventSources connected`)
    await closeStreams(plain)
  }
} finally {
  await browser.close()
}
console.log('browser-h2: all checks passed')
process.exit(0)
