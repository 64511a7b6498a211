// tRPC: an input field of the wrong type (ping's `n` is a number).
import { trpc } from '../clients.js'

await trpc.ping.query({ n: 'one' }) // @error
