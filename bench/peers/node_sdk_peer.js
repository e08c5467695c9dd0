#!/usr/bin/env node
// Peer benchmark: @larksuiteoapi/node-sdk verify + decrypt + parse on the same request bytes.
// Each request: JSON.parse of the raw body, headers attached as the SDK's HTTP adaptor does, then
// EventDispatcher.invoke (SHA-256 signature, AES-256-CBC decrypt, parse, handler call).
// Prints one JSON object: median nanoseconds per request for the '审批' event and the card click.
'use strict';
const path = require('path');
const fs = require('fs');
const lark = require('@larksuiteoapi/node-sdk');

const root = path.resolve(__dirname, '..', '..');
const vectors = JSON.parse(fs.readFileSync(path.join(root, '..', 'shared', 'fixtures', 'feishu', 'vectors.json'), 'utf8'));

async function main() {
  const iterations = Number(process.argv[2] || 5000);
  const repeats = Number(process.argv[3] || 7);
  const cfg = vectors.test_config;
  const seen = { event: 0, card: 0 };
  const quiet = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {}, trace: () => {} };
  const dispatcher = new lark.EventDispatcher({
    encryptKey: cfg.encrypt_key,
    verificationToken: cfg.verification_token,
    logger: quiet,
    loggerLevel: lark.LoggerLevel.error,
  }).register({
    'im.message.receive_v1': async (data) => { if (data.message.message_id) seen.event += 1; },
    'card.action.trigger': async (data) => { if (data.action.value.type === 'leave') seen.card += 1; return {}; },
  });
  const byName = Object.fromEntries(vectors.request_vectors.map((r) => [r.name, r]));
  const cases = { event: byName.p2p_event_encrypted, card: byName.card_action_trigger_leave_encrypted };
  const out = { peer: '@larksuiteoapi/node-sdk', version: require('@larksuiteoapi/node-sdk/package.json').version };
  for (const [name, vec] of Object.entries(cases)) {
    const headers = Object.fromEntries(Object.entries(vec.headers).map(([k, v]) => [k.toLowerCase(), v]));
    const raw = Buffer.from(vec.body, 'utf8');
    const once = () => dispatcher.invoke(Object.assign(Object.create({ headers }), JSON.parse(raw.toString('utf8'))));
    await once();
    if (seen[name] !== 1) {
      console.error(`node-sdk rejected the ${name} vector`);
      process.exit(1);
    }
    const samples = [];
    for (let r = 0; r < repeats; r++) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) await once();
      samples.push(Number(process.hrtime.bigint() - start) / iterations);
    }
    samples.sort((a, b) => a - b);
    out[`${name}_ns`] = samples[Math.floor(samples.length / 2)];
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
