// The chat page, written against the chat's generated types (../golden/orpc.ts, which
// `chat --emit-typescript` writes from the Rust router) and bundled by esbuild into
// examples/src/chat.js, which the chat binary serves at /chat.js (typescript/check.sh checks the
// committed bundle is this file's).
//
// Posts arrive over a plain EventSource on tRPC's subscription endpoint. When the connection
// drops (or the server restarts), the browser reconnects by itself and sends Last-Event-ID, so
// the server resumes after the last post shown: nothing is lost, nothing shown twice. A server
// that lost its posts answers that id with a gap (412), and the page starts over.
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
  }
}

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
const seen = new Set<number>()
window.receivedIds = []

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

// Starts a subscription, with no id: posts from now on.
function subscribe(): void {
  const source = new EventSource('/trpc/post.live')
  source.addEventListener('connected', () => say('live', true))
  source.addEventListener('message', (event) => show(JSON.parse(event.data) as Post))
  source.addEventListener('serialized-error', (event) => {
    const error = JSON.parse((event as MessageEvent<string>).data) as SerializedError
    if (error.data?.httpStatus === 412) {
      // A gap: the server no longer has what came after our last post (it restarted without
      // its posts). Resuming would meet the same gap, so start over: the posts shown belong
      // to its earlier life.
      source.close()
      posts.replaceChildren()
      seen.clear()
      window.receivedIds = []
      window.restarts = (window.restarts ?? 0) + 1
      say('the chat restarted: starting over')
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
subscribe()

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
