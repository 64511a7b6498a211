// oRPC: an input to a procedure that takes none.
import { orpc } from '../clients.js'

await orpc.me({ name: 'ann' }) // @error
