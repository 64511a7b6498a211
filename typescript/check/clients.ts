// A client of each kind, typed by the golden modules, for the programs in check/negative/ (each
// imports them and makes one mistake). Declarations only: nothing here runs.
import type { ContractRouterClient } from '@orpc/contract'
import type { TRPCClient } from '@trpc/client'
import type { contract } from '../golden/orpc.js'
import type { AppRouter } from '../golden/trpc.js'

export declare const orpc: ContractRouterClient<typeof contract>
export declare const trpc: TRPCClient<AppRouter>
