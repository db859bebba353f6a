'use client'

import type { WireFilter } from '@meshtap/protocol'
import { createContext, type ReactNode, useContext, useEffect, useMemo, useRef } from 'react'
import { MeshtapClientError } from './errors.js'
import {
  createMeshtapClient,
  type MeshtapClient,
  type MeshtapClientOptions,
} from './meshtap-client.js'

const MeshtapContext = createContext<MeshtapClient | undefined>(undefined)
MeshtapContext.displayName = 'MeshtapContext'

/**
 * Props of {@link MeshtapProvider}: a `url` (the provider then creates, connects and closes its
 * own client), or a `client` you created (the provider connects it, and leaves closing it to you).
 *
 * @example
 * const props: MeshtapProviderProps = { url: 'wss://mesh.example.org/live', filter: { channels: ['LongFast'] } }
 */
export interface MeshtapProviderProps {
  /** The WebSocket URL of a `@meshtap/ws-server` endpoint. Changing it makes a new client. */
  url?: string
  /** An access token, or a function that returns one (see {@link MeshtapClientOptions.token}). */
  token?: MeshtapClientOptions['token']
  /** A client to use instead of creating one. */
  client?: MeshtapClient
  /** What to subscribe to. Changing it re-subscribes (the data of the previous filter is dropped). */
  filter?: WireFilter
  /** The other options of the client the provider creates (read when it is created). */
  options?: Omit<MeshtapClientOptions, 'url' | 'token' | 'filter'>
  children?: ReactNode
}

const functionIds = new WeakMap<object, number>()
let nextFunctionId = 1

/**
 * A string that is equal for structurally equal plain values (functions by identity): what hooks
 * and the provider compare their object arguments by, so that inline objects do not re-subscribe.
 *
 * @internal
 */
export function keyOf(value: unknown): string {
  if (value === undefined) return ''
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v !== 'function') return v
    let id = functionIds.get(v)
    if (id === undefined) {
      id = nextFunctionId++
      functionIds.set(v, id)
    }
    return `\u0192${id}`
  })
}

/**
 * Returns the first value seen with the current key, so that an inline object argument keeps its
 * identity across renders while its content does not change.
 *
 * @internal
 */
export function useStable<T>(value: T): T {
  const key = keyOf(value)
  const ref = useRef<{ key: string; value: T } | undefined>(undefined)
  if (ref.current === undefined || ref.current.key !== key) ref.current = { key, value }
  return ref.current.value
}

/**
 * Makes live mesh data available to the hooks below it. Given a `url`, it creates a client,
 * connects it after mounting (never during a server render) and closes it on unmount; given a
 * `client`, it connects that one and leaves closing it to you.
 *
 * @example
 * import { MeshtapProvider, useNodes } from '@meshtap/react-hooks'
 *
 * function NodeList() {
 *   const nodes = useNodes({ sort: 'name' })
 *   return <ul>{nodes.map((n) => <li key={n.num}>{n.user?.longName ?? n.id}</li>)}</ul>
 * }
 *
 * export function App() {
 *   return (
 *     <MeshtapProvider url="wss://mesh.example.org/live">
 *       <NodeList />
 *     </MeshtapProvider>
 *   )
 * }
 */
export function MeshtapProvider(props: MeshtapProviderProps): ReactNode {
  const { client: given, url, token, children } = props
  const filter = useStable(props.filter)
  if (!given && (typeof url !== 'string' || url.length === 0)) {
    throw new MeshtapClientError(
      'INVALID_OPTIONS',
      '<MeshtapProvider> needs a `url` (the WebSocket URL of a @meshtap/ws-server) or a `client`',
    )
  }
  // The latest props, for the client created below: its options are read once, a token function
  // is called through the ref (so an inline function does not make a new client on every render),
  // and filter changes go through `setFilter`.
  const latest = useRef({ filter, token, options: props.options })
  latest.current = { filter, token, options: props.options }
  const tokenKey = typeof token === 'function' ? 'function' : token
  // A client is created while rendering, but it does nothing until the effect below connects it.
  const owned = useMemo(() => {
    if (given) return undefined
    const { filter: f, options } = latest.current
    const opts: MeshtapClientOptions = { ...options, url: url as string }
    if (tokenKey === 'function') {
      opts.token = () => {
        const t = latest.current.token
        return typeof t === 'function' ? t() : t
      }
    } else if (tokenKey !== undefined) opts.token = tokenKey
    if (f !== undefined) opts.filter = f
    return createMeshtapClient(opts)
  }, [given, url, tokenKey])
  const client = (given ?? owned) as MeshtapClient

  useEffect(() => {
    client.connect()
    return owned ? () => owned.close() : undefined
  }, [client, owned])

  useEffect(() => {
    if (filter !== undefined || owned) client.setFilter(filter)
  }, [client, owned, filter])

  return <MeshtapContext.Provider value={client}>{children}</MeshtapContext.Provider>
}

/**
 * The client of the nearest {@link MeshtapProvider}, for what the hooks do not cover (the raw
 * snapshot, `setFilter`, `on`). Throws when there is no provider.
 *
 * @example
 * const client = useMeshtapClient()
 * const onPick = (channel: string) => client.setFilter({ channels: [channel] })
 */
export function useMeshtapClient(): MeshtapClient {
  return useClientFor('useMeshtapClient')
}

/**
 * The provider's client, or a clear error naming the hook.
 *
 * @internal
 */
export function useClientFor(hook: string): MeshtapClient {
  const client = useContext(MeshtapContext)
  if (!client) {
    throw new MeshtapClientError(
      'NO_PROVIDER',
      `${hook} must be used inside <MeshtapProvider>: wrap the component tree in <MeshtapProvider url="wss://…"> (or pass it a client).`,
    )
  }
  return client
}
