// The chat page in headless Chromium (Debian's, driven by playwright-core): a person posts and
// sees the post arrive live over a plain EventSource on /trpc/post.live; the server restarts;
// the page reconnects by itself with Last-Event-ID and misses no post. Then the server restarts
// with none of its posts: the page's Last-Event-ID meets a gap (412), and it starts over.
// Last, an EventSource on /trpc/mentions.live without a token: the server refuses it with 401
// before any stream, and the browser fails the connection and never reconnects.
//
//   node browser.mjs <page url>
//
// It talks to the test that runs it over stdio: it prints `STOP` when the server should go
// down, and waits for a line `RESTARTED <title>` (the title of a post the test made while the
// page was disconnected); then `STOP FRESH` when the server should restart without its posts,
// and waits for `RESTARTED`. It prints one `ok …` line per check and exits non-zero on failure.
import assert from 'node:assert/strict'
import { createInterface } from 'node:readline'
import { launchChromium } from './chromium.mjs'

const url = process.argv[2]
if (!url) {
  console.error('usage: node browser.mjs <page url>')
  process.exit(2)
}
const WAIT = 15_000
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()

const browser = await launchChromium()
try {
  const page = await browser.newPage()
  await page.goto(url)
  await page.waitForSelector('#status.live', { timeout: WAIT })
  console.log('ok   the page opened its EventSource on /trpc/post.live')

  const post = async (title) => {
    await page.fill('#title', title)
    await page.click('#send')
  }
  const titles = () => page.$$eval('#posts li', (items) => items.map((li) => li.lastChild.textContent).reverse())
  const waitForTitles = (expected) =>
    page.waitForFunction(
      (want) => {
        const got = [...document.querySelectorAll('#posts li')].map((li) => li.lastChild.textContent).reverse()
        return JSON.stringify(got) === JSON.stringify(want)
      },
      expected,
      { timeout: WAIT },
    )

  await post('first')
  await waitForTitles(['first'])
  console.log('ok   a post made on the page arrives live on the page')

  console.log('STOP')
  const answer = await lines.next()
  const [word, ...rest] = String(answer.value ?? '').split(' ')
  assert.equal(word, 'RESTARTED', `expected RESTARTED from the test, got ${JSON.stringify(answer.value)}`)
  const missed = rest.join(' ')

  // The EventSource reconnects on its own and resumes after the last id it saw.
  await page.waitForSelector('#status.live', { timeout: WAIT })
  await waitForTitles(['first', missed])
  console.log(`ok   after the restart the page resumed and received "${missed}", posted while it was away`)

  await post('second')
  await waitForTitles(['first', missed, 'second'])
  // What arrived over the wire, before the page's own de-duplication: each id exactly once.
  assert.deepEqual(await page.evaluate(() => window.receivedIds), [1, 2, 3], 'each post once, in order')
  assert.deepEqual(await titles(), ['first', missed, 'second'])
  console.log('ok   every post is shown once, in order, across the restart')

  console.log('STOP FRESH')
  const fresh = await lines.next()
  assert.equal(String(fresh.value ?? ''), 'RESTARTED', `expected RESTARTED, got ${JSON.stringify(fresh.value)}`)
  // The browser resumes after post 3, which the new run never made: the page is told (412) and
  // subscribes again from now on, dropping what it showed of the earlier run.
  await page.waitForFunction(() => window.restarts === 1, null, { timeout: WAIT })
  await page.waitForSelector('#status.live', { timeout: WAIT })
  await waitForTitles([])
  await post('after a fresh start')
  await waitForTitles(['after a fresh start'])
  assert.deepEqual(await page.evaluate(() => window.receivedIds), [1], 'the new run\'s first post, once')
  assert.equal(await page.evaluate(() => window.restarts), 1, 'started over once, not in a loop')
  console.log('ok   after a restart without its posts the page meets the gap, starts over and shows new posts')
  // The browser's EventSource sends no authorization: the server refuses the subscription in
  // its setup with 401 and a JSON body. A non-200 answer fails the connection for good: one
  // error event, readyState CLOSED at once, and no reconnect after the retry delay (3 s).
  const refused = []
  const mentions = (r) => new URL(r.url()).pathname === '/trpc/mentions.live'
  page.on('request', (r) => mentions(r) && refused.push({ method: r.method(), status: null }))
  page.on('response', (r) => {
    if (mentions(r)) refused[refused.length - 1].status = r.status()
  })
  const failed = await page.evaluate(
    (ms) =>
      new Promise((resolve) => {
        const es = new EventSource('/trpc/mentions.live')
        window.refused = { es, errors: 0, opened: false }
        es.onopen = () => (window.refused.opened = true)
        es.onerror = () => {
          window.refused.errors++
          resolve({ readyState: es.readyState })
        }
        setTimeout(() => resolve({ timedOut: true }), ms)
      }),
    WAIT,
  )
  assert.deepEqual(failed, { readyState: 2 }, 'onerror with readyState CLOSED')
  await new Promise((resolve) => setTimeout(resolve, 4000)) // past the retry delay
  const after = await page.evaluate(() => ({
    readyState: window.refused.es.readyState,
    errors: window.refused.errors,
    opened: window.refused.opened,
  }))
  assert.deepEqual(after, { readyState: 2, errors: 1, opened: false })
  assert.deepEqual(refused, [{ method: 'GET', status: 401 }], 'one request, answered 401, and no reconnect')
  console.log('ok   an EventSource on /trpc/mentions.live without a token gets 401: onerror, CLOSED at once, no reconnect in 4 s')
} finally {
  await browser.close()
}
console.log('browser: all checks passed')
process.exit(0)
