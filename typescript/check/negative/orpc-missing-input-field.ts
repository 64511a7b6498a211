// oRPC: an input without a field it needs (counter needs from, to and delayMs).
import { orpc } from '../clients.js'

await orpc.counter({ from: 1, to: 3 }) // @error
