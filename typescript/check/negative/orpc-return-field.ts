// oRPC: reading a field a stream's return value does not have (counter returns {done}).
import { orpc } from '../clients.js'

const counter = await orpc.counter({ from: 1, to: 3, delayMs: 0 })
let step = await counter.next()
while (!step.done) step = await counter.next()
console.log(step.value.done)
console.log(step.value.count) // @error
