// oRPC: an input field of the wrong type (ping's `n` is a number).
import { orpc } from '../clients.js'

await orpc.ping({ n: 'one' }) // @error
