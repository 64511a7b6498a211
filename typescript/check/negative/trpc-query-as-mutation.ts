// tRPC: a query called as a mutation.
import { trpc } from '../clients.js'

await trpc.ping.mutate({ n: 1 }) // @error
