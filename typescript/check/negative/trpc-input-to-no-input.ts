// tRPC: an input to a query that takes none.
import { trpc } from '../clients.js'

await trpc.me.query({ name: 'ann' }) // @error
