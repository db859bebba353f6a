import { useEffect, useState } from 'react'

const TOKEN_KEY = 'meshtap.token'

/** The access token the user entered (only needed with `--protect-reads`). */
export function getToken(): string | undefined {
  return localStorage.getItem(TOKEN_KEY) ?? undefined
}

export function setToken(token: string | undefined): void {
  if (token) localStorage.setItem(TOKEN_KEY, token)
  else localStorage.removeItem(TOKEN_KEY)
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/** GET a JSON document from the server's API. */
export async function api<T>(path: string): Promise<T> {
  const token = getToken()
  const res = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {} })
  const body = await res.json().catch(() => ({}))
  if (!res.ok)
    throw new ApiError(res.status, (body as { message?: string }).message ?? res.statusText)
  return body as T
}

/** A page of a list endpoint. */
export interface Page<T> {
  items: T[]
  nextCursor?: string
}

/** Fetches `path` now and every `refreshMs` (when given); `undefined` until the first answer. */
export function useApi<T>(
  path: string | undefined,
  refreshMs?: number,
): { data?: T; error?: ApiError } {
  const [state, setState] = useState<{ data?: T; error?: ApiError; path?: string }>({})
  useEffect(() => {
    if (!path) return
    let live = true
    const load = () =>
      api<T>(path).then(
        (data) => live && setState({ data, path }),
        (error: ApiError) => live && setState((s) => ({ ...s, error, path })),
      )
    void load()
    const timer = refreshMs ? setInterval(load, refreshMs) : undefined
    return () => {
      live = false
      if (timer) clearInterval(timer)
    }
  }, [path, refreshMs])
  return state.path === path ? state : {}
}

/** "3 s ago", "5 min ago"… */
export function ago(t: number | undefined, now = Date.now()): string {
  if (!t) return '—'
  const s = Math.max(0, Math.round((now - t) / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86_400)} d ago`
}

/** A node's display name. */
export function nameOf(node: {
  id: string
  user?: { longName?: string; shortName?: string }
}): string {
  return node.user?.longName || node.user?.shortName || node.id
}
