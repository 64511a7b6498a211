// tRPC: a procedure the router does not have.
import { trpc } from '../clients.js'

await trpc.post.delete.mutate({ id: 1 }) // @error
