// An oRPC 2 client typed by the golden contract, for the programs in check/negative/ (the oRPC
// ones of ../check/negative/, copied there by check/project.mjs: each imports `orpc` from here and
// makes one mistake). Declarations only: nothing here runs.
import type { RouterContractClient } from '@orpc/contract'
import type { contract } from '../golden/orpc.js'

export declare const orpc: RouterContractClient<typeof contract>
