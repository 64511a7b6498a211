// oRPC: a procedure the router does not have.
import { orpc } from '../clients.js'

await orpc.post.delete({ id: 1 }) // @error
