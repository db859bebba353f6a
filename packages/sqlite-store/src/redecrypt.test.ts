import { describeRedecryptConformance } from '@meshtap/core/testing'
import { tmpFile } from '../test/helpers.js'
import { createSqliteStore } from './sqlite-store.js'

describeRedecryptConformance('sqlite-store', () =>
  createSqliteStore({ path: tmpFile(), retention: false }),
)
