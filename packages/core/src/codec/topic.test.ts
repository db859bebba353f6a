import { describe, expect, it } from 'vitest'
import { parseTopic } from './topic.js'

describe('parseTopic', () => {
  it.each([
    ['msh/2/e/LongFast/!abcd1234', 'msh'],
    ['msh/US/2/e/LongFast/!abcd1234', 'msh/US'],
    ['msh/US/CA/bayarea/2/e/LongFast/!abcd1234', 'msh/US/CA/bayarea'],
    ['device/sck/mesh12/2/e/MediumFast/!da741924', 'device/sck/mesh12'],
  ])('reads the root of %s at any depth', (topic, root) => {
    expect(parseTopic(topic)).toMatchObject({ kind: 'envelope', root, type: 'e' })
  })
  it('reads channel and gateway', () => {
    expect(parseTopic('msh/EU_868/DE/2/e/PKI/!0badcafe')).toEqual({
      kind: 'envelope',
      root: 'msh/EU_868/DE',
      type: 'e',
      channelId: 'PKI',
      gatewayId: '!0badcafe',
    })
  })
  it('knows map reports, legacy JSON and legacy /2/c/', () => {
    expect(parseTopic('msh/US/2/map/')).toEqual({ kind: 'mapreport', root: 'msh/US', type: 'map' })
    expect(parseTopic('msh/US/2/map')).toMatchObject({ kind: 'mapreport' })
    expect(parseTopic('msh/US/2/json/LongFast/!abcd1234')).toMatchObject({
      kind: 'json-uplink',
      channelId: 'LongFast',
    })
    expect(parseTopic('msh/2/c/LongFast/!abcd1234')).toMatchObject({ kind: 'envelope', type: 'c' })
  })
  it.each([
    '',
    'msh',
    'msh/US/2/stat/!abcd1234',
    '2/e/LongFast/!abcd1234',
    'msh/US/2/e/LongFast',
    'msh/US/2/e//!abcd1234',
    'msh/US/2/x/LongFast/!abcd1234',
    'msh/US/2/map/extra',
    'msh/+/2/e/LongFast/!abcd1234',
    'homeassistant/sensor/state',
  ])('refuses %j', (topic) => {
    expect(parseTopic(topic)).toBeUndefined()
  })
})
