import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { renderToString } from 'react-dom/server'
import { expect, it } from 'vitest'
import { App } from './readme-example.js'

it('the README example is this type-checked file, and renders', () => {
  const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8')
  const example = readFileSync(join(import.meta.dirname, 'readme-example.tsx'), 'utf8')
  const code = example
    .slice(example.indexOf('\n') + 1)
    .replace("from '../src/index.js'", "from '@meshtap/react-hooks'")
  expect(readme).toContain(`## Example\n\n\`\`\`tsx\n${code}\`\`\``)
  expect(code.trim().split('\n').length).toBeLessThanOrEqual(11)
  expect(renderToString(<App />)).toBe('<ul title="closed"></ul>')
})
