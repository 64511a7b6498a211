// The chat page over WebSocket (`/?transport=ws`) in headless Chromium (Debian's, driven by
// playwright-core): the page subscribes to post.live over tRPC's WebSocket at /trpc with the
// browser's own WebSocket, and must be as robust as its EventSource:
// - a post made on the page arrives live over the socket, and no EventSource is opened;
// - it answers the server's `PING` with `PONG`, so the server keeps the socket;
// - the socket is cut (the server's /__test/drop, as a network failure): the page reconnects by
//   itself, resubscribes after the last post it showed, and a post made meanwhile arrives once;
// - the server restarts with the same posts: its shutdown sends tRPC's reconnect notice, the
//   page tries a new socket at once, backs off while the server is away, then resumes with
//   `lastEventId` and receives the post made while it was away, each post exactly once;
// - the server restarts with none of its posts: the resume id meets an explicit gap (412), and
//   the page starts over and shows the new run's posts;
// - a second page whose sockets go through a proxy (Playwright's routeWebSocket) is sent the
//   reconnect notice while the server stays up: it opens a new socket, subscribes there after
//   the last post it showed, and only then closes the old one (after `subscription.stop`); a
//   post that reaches the old socket while the new subscription is on its way is shown once.
//
//   node browser-ws.mjs <page url, with ?transport=ws>
//
// It talks to the test that runs it over stdio, as browser.mjs does: it prints `STOP` when the
// server should go down, and waits for `RESTARTED <title>` (the title of a post the test made
// while the page was disconnected); then `STOP FRESH`, and waits for `RESTARTED`. The server
// must have the test hooks at /__test and ping quiet sockets within about a second. It prints one
// `ok …` line per check and exits non-zero on failure.
import assert from 'node:assert/strict'
import { createInterface } from 'node:readline'
import { launchChromium } from './chromium.mjs'

const url = process.argv[2]
if (!url) {
  console.error('usage: node browser-ws.mjs <page url>')
  process.exit(2)
}
const origin = new URL(url).origin
const WAIT = 15_000
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const until = async (what, test) => {
  const end = Date.now() + WAIT
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out after ${WAIT} ms waiting for ${what}`)
    await sleep(25)
  }
}
const parse = (text) => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
const NOTICE = '{"id":null,"method":"reconnect"}'

const browser = await launchChromium()
try {
  const page = await browser.newPage()
  // Every socket the page opens, with the frames as Chromium sent and received them.
  const sockets = []
  page.on('websocket', (ws) => {
    const socket = { url: ws.url(), sent: [], received: [], closed: false }
    sockets.push(socket)
    ws.on('framesent', (frame) => socket.sent.push(String(frame.payload)))
    ws.on('framereceived', (frame) => socket.received.push(String(frame.payload)))
    ws.on('close', () => (socket.closed = true))
  })
  const eventSources = []
  page.on('request', (r) => new URL(r.url()).pathname.startsWith('/trpc/post.live') && eventSources.push(r.url()))
  const subscriptions = () =>
    sockets.flatMap((socket, n) =>
      socket.sent.map(parse).filter((m) => m?.method === 'subscription').map((m) => ({ socket: n, ...m })))

  const post = async (on, title) => {
    await on.fill('#title', title)
    await on.click('#send')
  }
  const titlesOf = (on) => on.$$eval('#posts li', (items) => items.map((li) => li.lastChild.textContent).reverse())
  const waitForTitles = (on, expected) =>
    on.waitForFunction(
      (want) => {
        const got = [...document.querySelectorAll('#posts li')].map((li) => li.lastChild.textContent).reverse()
        return JSON.stringify(got) === JSON.stringify(want)
      },
      expected,
      { timeout: WAIT },
    )

  await page.goto(url)
  await page.waitForSelector('#status.live', { timeout: WAIT })
  assert.equal(await page.evaluate(() => window.transport), 'ws')
  assert.match(await page.textContent('#transport'), /over WebSocket/)
  assert.equal(await page.getAttribute('#transport a', 'href'), '/', 'a link to the page over SSE')
  // Playwright reports frames on a channel of its own: they may come a little after the page
  // has shown what they carried, so checks of frames wait for them.
  await until('the first answer', () => sockets[0]?.received.length > 0)
  assert.equal(sockets.length, 1, 'one socket')
  assert.equal(sockets[0].url, `${origin.replace('http', 'ws')}/trpc`)
  assert.deepEqual(parse(sockets[0].sent[0]), { id: 1, method: 'subscription', params: { path: 'post.live' } })
  assert.deepEqual(parse(sockets[0].received[0]), { id: 1, result: { type: 'started' } })
  console.log('ok   the page (?transport=ws) subscribed to post.live over a WebSocket on /trpc, without a lastEventId')

  await post(page, 'first')
  await waitForTitles(page, ['first'])
  await until('post 1 over the socket', () => sockets[0].received.some((m) => parse(m)?.result?.id === '1'))
  assert.deepEqual(eventSources, [], 'no EventSource')
  console.log('ok   a post made on the page arrives live over the socket (and no EventSource is opened)')

  // The test's server pings a socket quiet for 0.5 s and drops it 1 s later without an answer.
  await until('a PING answered PONG', () => sockets[0].received.includes('PING') && sockets[0].sent.includes('PONG'))
  await sleep(2500)
  assert.equal(sockets[0].closed, false, 'the server kept the socket')
  assert.equal(sockets.length, 1, 'no new socket')
  const count = (frames, text) => frames.filter((m) => m === text).length
  await until('each PING answered', () => count(sockets[0].received, 'PING') === count(sockets[0].sent, 'PONG'))
  const pings = count(sockets[0].received, 'PING')
  assert.ok(pings >= 3, `pinged while quiet (${pings} PINGs)`)
  console.log(`ok   the page answers the server's PING with PONG (${pings} in 2.5 s) and keeps its socket`)

  // Cut as a network failure would: no close frame.
  const dropped = await fetch(`${origin}/__test/drop`, { method: 'POST' })
  assert.ok(dropped.ok, `POST /__test/drop answered ${dropped.status}`)
  await post(page, 'made while cut')
  await until('the cut socket closed', () => sockets[0].closed)
  await waitForTitles(page, ['first', 'made while cut'])
  await page.waitForSelector('#status.live', { timeout: WAIT })
  await until('the resubscription', () => subscriptions().some((s) => s.socket > 0))
  const afterCut = subscriptions().filter((s) => s.socket > 0)
  assert.equal(afterCut.length, 1, 'one resubscription')
  assert.equal(afterCut[0].params.lastEventId, '1', 'resubscribed after the last post shown')
  assert.deepEqual(await page.evaluate(() => window.receivedIds), [1, 2], 'each post once')
  console.log('ok   after the socket is cut the page reconnects, resubscribes with lastEventId "1" and shows the post made meanwhile once')

  const beforeStop = sockets.length
  const live = sockets[beforeStop - 1]
  console.log('STOP')
  const answer = await lines.next()
  const [word, ...rest] = String(answer.value ?? '').split(' ')
  assert.equal(word, 'RESTARTED', `expected RESTARTED from the test, got ${JSON.stringify(answer.value)}`)
  const missed = rest.join(' ')
  await waitForTitles(page, ['first', 'made while cut', missed])
  await page.waitForSelector('#status.live', { timeout: WAIT })
  await until('the resubscription', () => subscriptions().some((s) => s.socket >= beforeStop))
  assert.ok(live.received.includes(NOTICE), 'the shutdown sent the reconnect notice')
  const resumed = subscriptions().filter((s) => s.socket >= beforeStop)
  assert.ok(resumed.length >= 1, 'resubscribed on a new socket')
  assert.ok(resumed.every((s) => s.params.lastEventId === '2'), `resumed after post 2: ${JSON.stringify(resumed)}`)
  console.log(
    `ok   the server restarted (reconnect notice, then ${sockets.length - beforeStop} new socket(s) while it was away): ` +
      `the page resumed with lastEventId "2" and received "${missed}"`,
  )

  await post(page, 'second')
  await waitForTitles(page, ['first', 'made while cut', missed, 'second'])
  // What arrived over the wire, before the page's own de-duplication: each id exactly once.
  assert.deepEqual(await page.evaluate(() => window.receivedIds), [1, 2, 3, 4], 'each post once, in order')
  assert.deepEqual(await titlesOf(page), ['first', 'made while cut', missed, 'second'])
  console.log('ok   every post is shown once, in order, across the cut and the restart')

  const beforeFresh = sockets.length
  console.log('STOP FRESH')
  const fresh = await lines.next()
  assert.equal(String(fresh.value ?? ''), 'RESTARTED', `expected RESTARTED, got ${JSON.stringify(fresh.value)}`)
  // The page resumes after post 4, which the new run never made: the server answers the
  // subscription with a gap (412), and the page subscribes again from now on, on the same
  // socket, dropping what it showed of the earlier run.
  await page.waitForFunction(() => window.restarts === 1, null, { timeout: WAIT })
  await page.waitForSelector('#status.live', { timeout: WAIT })
  await waitForTitles(page, [])
  const gapAnswered = () =>
    sockets.some((s, n) => n >= beforeFresh && s.received.some((m) => parse(m)?.error) &&
      s.sent.filter((m) => parse(m)?.method === 'subscription').length === 2)
  await until('the gap and the new subscription', gapAnswered)
  const gapSocket = sockets.findIndex((s, n) => n >= beforeFresh && s.received.some((m) => parse(m)?.error))
  assert.ok(gapSocket >= 0, 'an error on a socket opened after the restart')
  const [resume, again] = subscriptions().filter((s) => s.socket === gapSocket)
  assert.equal(resume.params.lastEventId, '4', 'resumed after the last post shown')
  const gap = sockets[gapSocket].received.map(parse).find((m) => m?.error)
  assert.equal(gap.id, resume.id)
  assert.equal(gap.error.data.httpStatus, 412, `a gap: ${JSON.stringify(gap)}`)
  assert.equal(gap.error.data.code, 'PRECONDITION_FAILED')
  assert.deepEqual(again.params, { path: 'post.live' }, 'subscribed again, without a lastEventId')
  await post(page, 'after a fresh start')
  await waitForTitles(page, ['after a fresh start'])
  assert.deepEqual(await page.evaluate(() => window.receivedIds), [1], 'the new run\'s first post, once')
  assert.equal(await page.evaluate(() => window.restarts), 1, 'started over once, not in a loop')
  console.log('ok   after a restart without its posts the resume meets the gap (412 PRECONDITION_FAILED), the page starts over and shows new posts')

  // The reconnect notice while the server stays up, sent through a proxy of the page's sockets.
  const context = await browser.newContext()
  const routed = []
  let holding = false
  const held = []
  await context.routeWebSocket(/\/trpc$/, (ws) => {
    const socket = { ws, toServer: [], toPage: [], closedByPage: null }
    routed.push(socket)
    const server = ws.connectToServer()
    socket.server = server
    ws.onMessage((message) => {
      socket.toServer.push(String(message))
      // The new socket's subscription waits while `holding` (its PONGs do not).
      if (holding && socket !== routed[0] && message !== 'PONG') held.push(() => server.send(message))
      else server.send(message)
    })
    server.onMessage((message) => {
      socket.toPage.push(String(message))
      ws.send(message)
    })
    ws.onClose((code, reason) => {
      socket.closedByPage = { code, reason }
      server.close({ code, reason })
    })
  })
  const second = await context.newPage()
  await second.goto(url)
  await second.waitForSelector('#status.live', { timeout: WAIT })
  await post(page, 'before the notice')
  await waitForTitles(second, ['before the notice'])
  holding = true
  routed[0].ws.send(NOTICE)
  await until('a subscription on a new socket', () => routed.length === 2 && held.length > 0)
  const moved = parse(routed[1].toServer.find((m) => parse(m)?.method === 'subscription'))
  assert.deepEqual(moved.params, { path: 'post.live', lastEventId: '2' }, 'subscribed after the last post shown')
  assert.equal(routed[0].closedByPage, null, 'the old socket stays open until the new one has started')
  // A post reaches the old socket while the new subscription is on its way: the new one sends it
  // again, and the page shows it once.
  await post(page, 'during the move')
  await until('post 3 on the old socket', () => routed[0].toPage.some((m) => parse(m)?.result?.id === '3'))
  await sleep(200)
  holding = false
  for (const send of held.splice(0)) send()
  await waitForTitles(second, ['before the notice', 'during the move'])
  await until('the old socket closed by the page', () => routed[0].closedByPage !== null)
  assert.ok(routed[0].toServer.includes(JSON.stringify({ id: 1, method: 'subscription.stop' })), 'stopped the old subscription')
  assert.ok(routed[1].toPage.some((m) => parse(m)?.result?.type === 'started'), 'after the new one started')
  await post(page, 'after the move')
  await waitForTitles(second, ['before the notice', 'during the move', 'after the move'])
  await second.waitForSelector('#status.live', { timeout: WAIT })
  assert.deepEqual(await second.evaluate(() => window.receivedIds), [2, 3, 4], 'each post once, in order')
  assert.equal(routed.length, 2, 'one new socket')
  assert.deepEqual(await page.evaluate(() => window.receivedIds), [1, 2, 3, 4])
  console.log(
    `ok   on the reconnect notice the page moves to a new socket (lastEventId "2"), closes the old one ` +
      `(code ${routed[0].closedByPage.code}) after the new one started, and shows a post made during the move once`,
  )
  await context.close()
} finally {
  await browser.close()
}
console.log('browser-ws: all checks passed')
process.exit(0)
