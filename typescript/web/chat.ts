// The chat page, written against the chat's generated types (../golden/orpc.ts, which
// `chat --emit-typescript` writes from the Rust router) and bundled by esbuild into
// examples/src/chat.js, which the chat binary serves at /chat.js (typescript/check.sh checks the
// committed bundle is this file's).
//
// Posts arrive over a plain EventSource on tRPC's subscription endpoint. When the connection
// drops (or the server restarts), the browser reconnects by itself and sends Last-Event-ID, so
// the server resumes after the last post shown: nothing is lost, nothing shown twice. A server
// that lost its posts answers that id with a gap (412), and the page starts over.
//
// With `?transport=ws` they arrive over tRPC's WebSocket at /trpc instead, spoken with the
// browser's own WebSocket (the protocol is a few JSON messages; see subscribeOverWebSocket): the
// page reconnects with backoff itself, resubscribing after the last post shown, and moves to a
// new socket when the server announces it is going away.
import { createORPCClient, safe } from '@orpc/client'
import { RPCLink } from '@orpc/client/fetch'
import type { ContractRouterClient, InferContractRouterOutputs } from '@orpc/contract'
import type { contract } from '../golden/orpc.js'

type Post = InferContractRouterOutputs<typeof contract>['post']['create']

declare global {
  interface Window {
    /** Every id as it arrived, duplicates included: tests read it to prove none came twice. */
    receivedIds: number[]
    /** How many times the page started over after a gap. */
    restarts?: number
    /** What carries the live posts: `sse` (the default) or `ws` (`?transport=ws`). */
    transport: Transport
  }
}

type Transport = 'sse' | 'ws'

const chat: ContractRouterClient<typeof contract> = createORPCClient(
  new RPCLink({ url: `${location.origin}/rpc` }),
)

const element = <T extends HTMLElement>(id: string): T => {
  const found = document.getElementById(id)
  if (!found) throw new Error(`the page has no #${id}`)
  return found as T
}
const posts = element<HTMLOListElement>('posts')
const status = element<HTMLElement>('status')
const form = element<HTMLFormElement>('form')
const titleInput = element<HTMLInputElement>('title')
const transportNote = element<HTMLElement>('transport')
const seen = new Set<number>()
window.receivedIds = []

const transport: Transport = new URLSearchParams(location.search).get('transport') === 'ws' ? 'ws' : 'sse'
window.transport = transport
const transportNames: Record<Transport, string> = { sse: 'Server-Sent Events', ws: 'WebSocket' }

// Says which transport is in use, with a link to the page over the other one.
function showTransport(): void {
  const other: Transport = transport === 'ws' ? 'sse' : 'ws'
  const url = new URL(location.href)
  if (other === 'ws') url.searchParams.set('transport', 'ws')
  else url.searchParams.delete('transport')
  const link = document.createElement('a')
  link.href = url.pathname + url.search
  link.textContent = `use ${transportNames[other]}`
  transportNote.replaceChildren(`Live posts over ${transportNames[transport]} · `, link)
}

function show(post: Post): void {
  window.receivedIds.push(post.id)
  if (seen.has(post.id)) return
  seen.add(post.id)
  const item = document.createElement('li')
  item.dataset.id = String(post.id)
  const id = document.createElement('span')
  id.className = 'id'
  id.textContent = `#${post.id}`
  item.append(id, document.createTextNode(post.title))
  posts.prepend(item)
}

function say(text: string, live = false): void {
  status.textContent = text
  status.className = live ? 'live' : ''
}

/** tRPC's `serialized-error` event: the error shape, with its HTTP status in `data`. */
type SerializedError = { message: string, data?: { httpStatus?: number } }

// A gap: the server no longer has what came after our last post (it restarted without its
// posts). Resuming would meet the same gap, so the page starts over: the posts shown belong to
// its earlier life.
function startOver(): void {
  posts.replaceChildren()
  seen.clear()
  window.receivedIds = []
  window.restarts = (window.restarts ?? 0) + 1
  say('the chat restarted: starting over')
}

// Starts a subscription over SSE, with no id: posts from now on.
function subscribe(): void {
  const source = new EventSource('/trpc/post.live')
  source.addEventListener('connected', () => say('live', true))
  source.addEventListener('message', (event) => show(JSON.parse(event.data) as Post))
  source.addEventListener('serialized-error', (event) => {
    const error = JSON.parse((event as MessageEvent<string>).data) as SerializedError
    if (error.data?.httpStatus === 412) {
      source.close()
      startOver()
      subscribe()
      return
    }
    say(`error: ${error.message}`)
  })
  source.onerror = () => {
    // CLOSED: the server answered with an error status instead of a stream, which a browser
    // never retries; otherwise the connection dropped, and the browser reconnects.
    const refused = source.readyState === EventSource.CLOSED
    say(refused ? 'the chat refused the stream: reload the page' : 'reconnecting…')
  }
}

/** A message of tRPC's WebSocket protocol from the server (`PING` aside, which is bare text). */
type ServerMessage = {
  id?: number | string | null
  method?: string
  result?: { type: 'started' | 'stopped' } | { type: 'data', id?: string, data: { id: string, data: Post } }
  error?: SerializedError
}

// Subscribes to post.live over tRPC's WebSocket at /trpc, as `@trpc/client`'s wsLink does, with
// the browser's own WebSocket:
// - `{"id":1,"method":"subscription","params":{"path":"post.live","lastEventId":"7"}}`
//   subscribes (without `lastEventId` the first time: posts from now on); the server answers
//   `started`, then each post as `{"id":1,"result":{"type":"data","id":"8","data":{"id":"8",
//   "data":{post}}}}`;
// - the server's `PING` text is answered `PONG` (a socket that does not answer is dropped);
// - `{"id":null,"method":"reconnect"}`: the server is going away. The page opens a new socket,
//   subscribes there after the last post shown, and closes the old one once the new one has
//   started; posts still coming on the old one are not shown, since the new subscription sends
//   everything after the id it was given.
// When the socket closes or fails, the page opens a new one after a backoff (0.5 s, doubling to
// 5 s, with jitter) and resubscribes after the last post it showed: nothing is missed, nothing
// comes twice. A gap (412) starts over as over SSE. Posting stays on oRPC over HTTP.
function subscribeOverWebSocket(): void {
  const url = new URL('/trpc', location.href)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  /** The id of the last post shown: a new subscription resumes after it. */
  let lastEventId: string | undefined
  /** Request ids, one per subscription sent, on whichever socket. */
  let nextId = 1
  /** The subscription whose posts are shown, and its socket. */
  let active: { socket: WebSocket, id: number } | undefined
  /** A socket being opened; it becomes the active one once it has subscribed. */
  let opening: WebSocket | undefined
  /** Sockets left behind after a reconnect notice, with their subscription's id: closed once the
   * new subscription has started. */
  const retiring = new Map<WebSocket, number>()
  let retry: ReturnType<typeof setTimeout> | undefined
  let failures = 0

  const send = (socket: WebSocket, message: unknown): void => {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message))
  }

  // Subscribes on `socket` after the last post shown; from now on only its posts are shown.
  const subscribeOn = (socket: WebSocket): void => {
    const id = nextId++
    const params: { path: string, lastEventId?: string } = { path: 'post.live' }
    if (lastEventId !== undefined) params.lastEventId = lastEventId
    send(socket, { id, method: 'subscription', params })
    if (active && active.socket !== socket) retiring.set(active.socket, active.id)
    active = { socket, id }
  }

  const closeRetiring = (): void => {
    for (const [socket, id] of retiring) {
      send(socket, { id, method: 'subscription.stop' })
      socket.close(1000, 'moved to a new connection')
    }
    retiring.clear()
  }

  // Opens a socket after a backoff, unless one is opening or due already.
  const later = (): void => {
    if (retry !== undefined || opening) return
    const delay = Math.min(500 * 2 ** failures, 5000) * (1 + 0.3 * Math.random())
    failures++
    retry = setTimeout(connect, delay)
  }

  const connect = (): void => {
    clearTimeout(retry)
    retry = undefined
    if (opening) return
    const socket = new WebSocket(url)
    opening = socket
    if (!active) say(failures ? 'reconnecting…' : 'connecting…')
    socket.onopen = () => {
      if (opening === socket) opening = undefined
      subscribeOn(socket)
    }
    socket.onmessage = (event: MessageEvent) => receive(socket, event.data)
    // Every failure ends in `close` (after `error`, if there was one).
    socket.onclose = () => {
      retiring.delete(socket)
      if (socket === opening) {
        // It never opened: the server is down, or still going away behind a reconnect notice.
        opening = undefined
        later()
      } else if (socket === active?.socket) {
        active = undefined
        closeRetiring()
        say('reconnecting…')
        later()
      }
    }
  }

  const receive = (socket: WebSocket, data: unknown): void => {
    if (data === 'PING') {
      socket.send('PONG')
      return
    }
    if (typeof data !== 'string') return
    let message: ServerMessage
    try {
      message = JSON.parse(data) as ServerMessage
    } catch {
      return
    }
    if (message.method === 'reconnect') {
      // Move now, not when this socket closes: the server keeps serving it for a while.
      if (socket === active?.socket && !opening) connect()
      return
    }
    // Only the active subscription's messages count: a retiring socket's posts come again on
    // the new subscription, and an ended subscription's `stopped` says nothing new.
    if (socket !== active?.socket || message.id !== active.id) return
    if (message.error) {
      if (message.error.data?.httpStatus === 412) {
        lastEventId = undefined
        startOver()
        subscribeOn(socket)
        return
      }
      // Anything else: say so, and try again later on a new socket, after the last post shown.
      active = undefined
      say(`error: ${message.error.message}; retrying`)
      socket.close(1000, 'retrying')
      later()
      return
    }
    const result = message.result
    if (result?.type === 'started') {
      failures = 0
      say('live', true)
      closeRetiring()
    } else if (result?.type === 'data') {
      show(result.data.data)
      lastEventId = result.id ?? result.data.id
    } else if (result?.type === 'stopped') {
      // The server ended the subscription by itself: subscribe again on a new socket.
      active = undefined
      socket.close(1000, 'resubscribing')
      say('reconnecting…')
      later()
    }
  }

  connect()
}

showTransport()
if (transport === 'ws') subscribeOverWebSocket()
else subscribe()

// Posting goes through oRPC's client, typed by the contract: a title of the wrong type, or a
// procedure that does not exist, would not compile.
form.addEventListener('submit', async (event) => {
  event.preventDefault()
  const title = titleInput.value.trim()
  if (!title) return
  const [error] = await safe(chat.post.create({ title }))
  if (error) {
    say(`could not post: ${error.message}`)
  } else {
    titleInput.value = ''
  }
})
