import { describeRedecryptConformance } from '@meshtap/core/testing'
import { testDatabase } from '../test/db.js'
import { createPgStore } from './pg-store.js'

const db = await testDatabase()
const pool = db.pool()

describeRedecryptConformance('pg-store', () =>
  createPgStore({ pool, schema: db.schema(), retention: false }),
)
