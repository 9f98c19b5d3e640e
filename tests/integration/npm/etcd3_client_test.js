#!/usr/bin/env node
// Proves the Node.js `etcd3` npm client (https://www.npmjs.com/package/etcd3) works against an
// etcd-v3-compatible server: Cairn, or a real etcd for reference.
//
// Usage: node etcd3_client_test.js http://127.0.0.1:PORT[,http://127.0.0.1:PORT2,...]
//
// Uses only the etcdserverpb.KV service (Range, Put, DeleteRange, Txn); no watch, no lease, no auth.
// Every step asserts and prints "ok <step>"; the first failure prints "not ok <step>: <error>" and
// exits 1. The whole run is bounded by a 60 s timer that exits 1 naming the step it was in.
// All keys live under a prefix unique to this run, which is deleted at the end.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { Etcd3 } = require('etcd3');

const OVERALL_TIMEOUT_MS = 60_000;
const CALL_DEADLINE_MS = 10_000; // per RPC, so a hung call fails its own step with DEADLINE_EXCEEDED
const CLOSE_GRACE_MS = 5_000; // after close(), the process must exit by itself within this
const CONCURRENT_PUTS = 50;

let currentStep = '(startup)';

function fail(message) {
  process.stderr.write(`not ok ${currentStep}: ${message}\n`);
  process.exit(1);
}

const overallTimer = setTimeout(
  () => fail(`overall timeout of ${OVERALL_TIMEOUT_MS / 1000} s exceeded`),
  OVERALL_TIMEOUT_MS,
);
process.on('unhandledRejection', (err) => fail(`unhandled rejection: ${err && err.stack ? err.stack : err}`));
process.on('uncaughtException', (err) => fail(`uncaught exception: ${err && err.stack ? err.stack : err}`));

async function step(name, fn) {
  currentStep = name;
  try {
    await fn();
  } catch (err) {
    fail(err && err.stack ? err.stack : String(err));
  }
  process.stdout.write(`ok ${name}\n`);
}

function parseEndpoints(argv) {
  if (argv.length !== 1 || argv[0].startsWith('-')) {
    process.stderr.write('usage: node etcd3_client_test.js http://127.0.0.1:PORT[,http://127.0.0.1:PORT...]\n');
    process.exit(2);
  }
  const hosts = argv[0].split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (hosts.length === 0) {
    process.stderr.write('no endpoints given\n');
    process.exit(2);
  }
  for (const h of hosts) {
    if (h.startsWith('https://')) {
      process.stderr.write(`TLS endpoints are not supported by this test: ${h}\n`);
      process.exit(2);
    }
  }
  return hosts;
}

// The txn response ops are oneofs; with the client's proto-loader options (oneofs: true) each op
// carries `response` naming the field that is set.
function opResponse(op, expected) {
  assert.equal(op.response, expected, `txn op kind: ${JSON.stringify(op.response)}`);
  assert.ok(op[expected], `txn op ${expected} missing`);
  return op[expected];
}

async function main() {
  const hosts = parseEndpoints(process.argv.slice(2));
  const client = new Etcd3({
    hosts,
    defaultCallOptions: () => ({ deadline: Date.now() + CALL_DEADLINE_MS }),
  });

  const P = `cairn-npm-test/${Date.now()}-${process.pid}-${crypto.randomBytes(4).toString('hex')}/`;
  process.stdout.write(`# endpoints ${hosts.join(',')} prefix ${P}\n`);

  await step('put/get string', async () => {
    const res = await client.put(`${P}str`).value('hello world');
    assert.ok(res.header, 'put response has a header');
    assert.ok(Number(res.header.revision) > 0, `put header revision ${res.header.revision}`);
    assert.equal(await client.get(`${P}str`).string(), 'hello world');
    // The default promise of get() is the string value too.
    assert.equal(await client.get(`${P}str`), 'hello world');
    // Overwrite.
    await client.put(`${P}str`).value('hello again');
    assert.equal(await client.get(`${P}str`).string(), 'hello again');
    // Non-ASCII UTF-8.
    await client.put(`${P}utf8`).value('grüße ✓ 日本');
    assert.equal(await client.get(`${P}utf8`).string(), 'grüße ✓ 日本');
  });

  await step('put/get buffer', async () => {
    const bytes = Buffer.from([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x00, 0x0a, 0x0d]);
    await client.put(`${P}buf`).value(bytes);
    const got = await client.get(`${P}buf`).buffer();
    assert.ok(Buffer.isBuffer(got), 'buffer() returns a Buffer');
    assert.deepEqual(got, bytes);
    // Binary key as well as binary value.
    const key = Buffer.concat([Buffer.from(`${P}binkey/`), Buffer.from([0x00, 0xff, 0x10])]);
    await client.put(key).value(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    assert.deepEqual(await client.get(key).buffer(), Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    // Empty value is a present key with an empty value, not a missing key.
    await client.put(`${P}empty`).value('');
    assert.equal(await client.get(`${P}empty`).string(), '');
    assert.equal(await client.get(`${P}empty`).exists(), true);
  });

  await step('get json and number', async () => {
    await client.put(`${P}json`).value(JSON.stringify({ a: 1, b: [true, null] }));
    assert.deepEqual(await client.get(`${P}json`).json(), { a: 1, b: [true, null] });
    await client.put(`${P}num`).value(42);
    assert.equal(await client.get(`${P}num`).number(), 42);
  });

  await step('get missing key', async () => {
    assert.equal(await client.get(`${P}does-not-exist`).string(), null);
    assert.equal(await client.get(`${P}does-not-exist`).buffer(), null);
    assert.equal(await client.get(`${P}does-not-exist`).number(), null);
    assert.equal(await client.get(`${P}does-not-exist`).exists(), false);
    assert.equal(await client.get(`${P}str`).exists(), true);
    const raw = await client.get(`${P}does-not-exist`).exec();
    assert.equal(raw.kvs.length, 0);
    assert.equal(raw.count, '0');
    assert.equal(raw.more, false);
  });

  // Range data set: keys r/a..r/e with values chosen so value order differs from key order.
  const R = `${P}r/`;
  const rangeData = { a: 'v3', b: 'v5', c: 'v1', d: 'v4', e: 'v2' };
  await step('getAll prefix', async () => {
    for (const [k, v] of Object.entries(rangeData)) {
      await client.put(R + k).value(v); // sequential, so create/mod revisions follow key order
    }
    // A key just past the prefix range must not be included.
    await client.put(`${P}r0`).value('outside');
    const strings = await client.getAll().prefix(R).strings();
    const expected = {};
    for (const [k, v] of Object.entries(rangeData)) expected[R + k] = v;
    assert.deepEqual(strings, expected);
    const buffers = await client.getAll().prefix(R).buffers();
    assert.deepEqual(Object.keys(buffers).sort(), Object.keys(expected).sort());
    assert.deepEqual(buffers[`${R}a`], Buffer.from('v3'));
    // The default promise of getAll() is the strings map.
    assert.deepEqual(await client.getAll().prefix(R), expected);
    // Keys come back in ascending key order by default.
    assert.deepEqual(await client.getAll().prefix(R).keys(), ['a', 'b', 'c', 'd', 'e'].map((k) => R + k));
    // Explicit range [r/b, r/d).
    assert.deepEqual(await client.getAll().inRange({ start: `${R}b`, end: `${R}d` }).keys(), [`${R}b`, `${R}c`]);
  });

  await step('range limit and sort', async () => {
    assert.deepEqual(
      await client.getAll().prefix(R).sort('Key', 'Descend').limit(2).keys(),
      [`${R}e`, `${R}d`],
    );
    assert.deepEqual(
      await client.getAll().prefix(R).sort('Key', 'Ascend').limit(3).keys(),
      [`${R}a`, `${R}b`, `${R}c`],
    );
    // Sort by value: v1 (c), v2 (e), v3 (a), ...
    assert.deepEqual(
      await client.getAll().prefix(R).sort('Value', 'Ascend').limit(3).keys(),
      [`${R}c`, `${R}e`, `${R}a`],
    );
    assert.deepEqual(
      await client.getAll().prefix(R).sort('Value', 'Descend').keys(),
      [`${R}b`, `${R}d`, `${R}a`, `${R}e`, `${R}c`],
    );
    // Sort by create and mod revision (puts were sequential in key order).
    assert.deepEqual(
      await client.getAll().prefix(R).sort('Create', 'Descend').limit(2).keys(),
      [`${R}e`, `${R}d`],
    );
    assert.deepEqual(
      await client.getAll().prefix(R).sort('Mod', 'Ascend').limit(2).keys(),
      [`${R}a`, `${R}b`],
    );
    // Limited raw response: `count` is the full match count, `more` says results were cut.
    const limited = await client.getAll().prefix(R).limit(2).exec();
    assert.equal(limited.kvs.length, 2);
    assert.equal(limited.count, '5');
    assert.equal(limited.more, true);
    const unlimited = await client.getAll().prefix(R).exec();
    assert.equal(unlimited.kvs.length, 5);
    assert.equal(unlimited.count, '5');
    assert.equal(unlimited.more, false);
  });

  await step('count', async () => {
    assert.equal(await client.getAll().prefix(R).count(), 5);
    assert.equal(await client.getAll().prefix(`${P}nothing-here/`).count(), 0);
    assert.equal(await client.getAll().inRange({ start: `${R}b`, end: `${R}e` }).count(), 3);
  });

  await step('keys-only', async () => {
    assert.deepEqual(await client.getAll().prefix(R).keys(), Object.keys(rangeData).map((k) => R + k));
    const kb = await client.getAll().prefix(R).keyBuffers();
    assert.deepEqual(kb[0], Buffer.from(`${R}a`));
    // Raw keys_only request through the client's KV stub: values must be empty, metadata present.
    const res = await client.kv.range({
      key: Buffer.from(R),
      range_end: Buffer.from(`${P}r0`), // '/' + 1 === '0'
      keys_only: true,
    });
    assert.equal(res.kvs.length, 5);
    assert.equal(res.count, '5');
    for (const kv of res.kvs) {
      assert.equal(kv.value.length, 0, `keys_only returned a value for ${kv.key}`);
      assert.ok(Number(kv.mod_revision) > 0, 'keys_only keeps mod_revision');
      assert.equal(kv.version, '1');
    }
  });

  await step('delete single', async () => {
    const res = await client.delete().key(`${R}a`);
    assert.equal(res.deleted, '1');
    assert.equal(await client.get(`${R}a`).string(), null);
    // Deleting a missing key deletes nothing and is not an error.
    const again = await client.delete().key(`${R}a`);
    assert.equal(again.deleted, '0');
    assert.equal(await client.getAll().prefix(R).count(), 4);
  });

  await step('delete with prev kv', async () => {
    const prev = await client.delete().key(`${R}b`).getPrevious();
    assert.ok(Array.isArray(prev), 'getPrevious() returns the prev_kvs array');
    assert.equal(prev.length, 1);
    assert.equal(prev[0].key.toString(), `${R}b`);
    assert.equal(prev[0].value.toString(), 'v5');
    assert.equal(await client.get(`${R}b`).string(), null);
  });

  await step('delete prefix', async () => {
    const prev = await client.delete().prefix(R).getPrevious();
    assert.deepEqual(prev.map((kv) => kv.key.toString()).sort(), [`${R}c`, `${R}d`, `${R}e`]);
    assert.equal(await client.getAll().prefix(R).count(), 0);
    // The key just outside the prefix survives.
    assert.equal(await client.get(`${P}r0`).string(), 'outside');
    const res = await client.delete().prefix(R);
    assert.equal(res.deleted, '0');
  });

  const T = `${P}txn`;
  await step('txn success branch', async () => {
    await client.put(T).value('v1');
    const res = await client
      .if(T, 'Value', '==', 'v1')
      .then(client.put(T).value('v2'))
      .else(client.get(T))
      .commit();
    assert.equal(res.succeeded, true);
    assert.equal(res.responses.length, 1);
    const put = opResponse(res.responses[0], 'response_put');
    assert.ok(put.header, 'txn put response has a header');
    assert.ok(Number(res.header.revision) > 0);
    assert.equal(await client.get(T).string(), 'v2');
  });

  await step('txn failure branch', async () => {
    const before = await client.get(T).exec();
    const res = await client
      .if(T, 'Value', '==', 'v1')
      .then(client.put(T).value('v3'))
      .else(client.get(T))
      .commit();
    assert.equal(res.succeeded, false);
    assert.equal(res.responses.length, 1);
    const range = opResponse(res.responses[0], 'response_range');
    assert.equal(range.kvs.length, 1);
    assert.equal(range.kvs[0].value.toString(), 'v2');
    // The failed compare wrote nothing: the key is unchanged.
    const after = await client.get(T).exec();
    assert.equal(after.kvs[0].value.toString(), 'v2');
    assert.equal(after.kvs[0].mod_revision, before.kvs[0].mod_revision);
    assert.equal(after.kvs[0].version, before.kvs[0].version);
  });

  await step('txn multi-op and multi-compare', async () => {
    await client.put(`${P}txn-c`).value('C');
    const res = await client
      .if(T, 'Value', '==', 'v2')
      .and(`${P}txn-missing`, 'Create', '==', 0)
      .then(
        client.put(`${P}txn-a`).value('A'),
        client.put(`${P}txn-b`).value('B'),
        client.get(T),
        client.delete().key(`${P}txn-c`),
      )
      .else(client.get(T))
      .commit();
    assert.equal(res.succeeded, true);
    assert.equal(res.responses.length, 4);
    opResponse(res.responses[0], 'response_put');
    opResponse(res.responses[1], 'response_put');
    assert.equal(opResponse(res.responses[2], 'response_range').kvs[0].value.toString(), 'v2');
    assert.equal(opResponse(res.responses[3], 'response_delete_range').deleted, '1');
    assert.equal(await client.get(`${P}txn-a`).string(), 'A');
    assert.equal(await client.get(`${P}txn-b`).string(), 'B');
    assert.equal(await client.get(`${P}txn-c`).string(), null);
    // Greater / Less / NotEqual on values (byte-wise).
    const cmp = await client
      .if(T, 'Value', '>', 'v1')
      .and(T, 'Value', '<', 'v3')
      .and(T, 'Value', '!=', 'zzz')
      .commit();
    assert.equal(cmp.succeeded, true);
    assert.equal(cmp.responses.length, 0);
  });

  await step('txn compare version/create/mod', async () => {
    const K = `${P}cmp`;
    await client.put(K).value('1');
    await client.put(K).value('2');
    const kv = (await client.get(K).exec()).kvs[0];
    assert.equal(kv.version, '2');
    const create = Number(kv.create_revision);
    const mod = Number(kv.mod_revision);
    assert.ok(mod > create, `mod ${mod} > create ${create}`);

    const expectTxn = async (label, builder, succeeded) => {
      const r = await builder.commit();
      assert.equal(r.succeeded, succeeded, label);
    };
    await expectTxn('Version == 2', client.if(K, 'Version', '==', 2), true);
    await expectTxn('Version > 1', client.if(K, 'Version', '>', 1), true);
    await expectTxn('Version < 2', client.if(K, 'Version', '<', 2), false);
    await expectTxn('Version != 2', client.if(K, 'Version', '!=', 2), false);
    await expectTxn('Create == create', client.if(K, 'Create', '==', create), true);
    await expectTxn('Create == create (string)', client.if(K, 'Create', '==', String(create)), true);
    await expectTxn('Create < create', client.if(K, 'Create', '<', create), false);
    await expectTxn('Mod == mod', client.if(K, 'Mod', '==', mod), true);
    await expectTxn('Mod > create', client.if(K, 'Mod', '>', create), true);
    await expectTxn('Mod < mod', client.if(K, 'Mod', '<', mod), false);
    // A missing key has version, create and mod revision 0.
    const M = `${P}cmp-missing`;
    await expectTxn('missing Version == 0', client.if(M, 'Version', '==', 0), true);
    await expectTxn('missing Create == 0', client.if(M, 'Create', '==', 0), true);
    await expectTxn('missing Mod == 0', client.if(M, 'Mod', '==', 0), true);

    // The classic create-if-absent lock pattern from the etcd3 docs.
    const lock = await client
      .if(`${P}lock`, 'Create', '==', 0)
      .then(client.put(`${P}lock`).value('me'))
      .else(client.get(`${P}lock`))
      .commit();
    assert.equal(lock.succeeded, true);
    const lock2 = await client
      .if(`${P}lock`, 'Create', '==', 0)
      .then(client.put(`${P}lock`).value('someone-else'))
      .else(client.get(`${P}lock`))
      .commit();
    assert.equal(lock2.succeeded, false);
    assert.equal(opResponse(lock2.responses[0], 'response_range').kvs[0].value.toString(), 'me');
  });

  await step('put with prevKv', async () => {
    const K = `${P}prev`;
    const first = await client.put(K).value('old').getPrevious();
    assert.ok(first.header, 'getPrevious() result carries the header');
    assert.equal(first.key, undefined, 'no prev_kv for a new key');
    const second = await client.put(K).value('new').getPrevious();
    assert.equal(second.key.toString(), K);
    assert.equal(second.value.toString(), 'old');
    assert.equal(second.version, '1');
    assert.ok(Number(second.header.revision) > Number(second.mod_revision));
    assert.equal(await client.get(K).string(), 'new');
  });

  await step('namespace round trip', async () => {
    const NS = `${P}ns/`;
    const ns = client.namespace(NS);
    await ns.put('a').value('1');
    await ns.put('b').value('2');
    assert.equal(await ns.get('a').string(), '1');
    // The namespace prefixes keys on the wire...
    assert.equal(await client.get(`${NS}a`).string(), '1');
    // ...and strips the prefix from keys it returns.
    assert.deepEqual(await ns.getAll().keys(), ['a', 'b']);
    assert.deepEqual(await ns.getAll().strings(), { a: '1', b: '2' });
    assert.equal(await ns.getAll().count(), 2);
    // A nested namespace.
    const inner = ns.namespace('sub/');
    await inner.put('x').value('X');
    assert.equal(await client.get(`${NS}sub/x`).string(), 'X');
    assert.deepEqual(await inner.getAll().keys(), ['x']);
    // Txn inside the namespace: compares and ops are prefixed too.
    const res = await ns
      .if('a', 'Value', '==', '1')
      .then(ns.put('c').value('3'))
      .else(ns.get('a'))
      .commit();
    assert.equal(res.succeeded, true);
    assert.equal(await client.get(`${NS}c`).string(), '3');
    // Keys outside the namespace are invisible to it.
    assert.equal(await ns.get(`${P}str`).string(), null);
    // delete().all() in the namespace only deletes the namespace.
    const del = await ns.delete().all();
    assert.equal(del.deleted, '4');
    assert.equal(await client.getAll().prefix(NS).count(), 0);
    assert.equal(await client.get(`${P}str`).string(), 'hello again');
  });

  await step(`${CONCURRENT_PUTS} concurrent puts`, async () => {
    const C = `${P}conc/`;
    const results = await Promise.all(
      Array.from({ length: CONCURRENT_PUTS }, (_, i) =>
        client.put(`${C}${String(i).padStart(3, '0')}`).value(`value-${i}`)),
    );
    assert.equal(results.length, CONCURRENT_PUTS);
    // Every put is its own revision.
    const revisions = new Set(results.map((r) => r.header.revision));
    assert.equal(revisions.size, CONCURRENT_PUTS, 'each put got a distinct revision');
    assert.equal(await client.getAll().prefix(C).count(), CONCURRENT_PUTS);
    const values = await client.getAll().prefix(C).strings();
    assert.equal(Object.keys(values).length, CONCURRENT_PUTS);
    for (let i = 0; i < CONCURRENT_PUTS; i++) {
      assert.equal(values[`${C}${String(i).padStart(3, '0')}`], `value-${i}`);
    }
    // Mod revisions of the keys match the revisions reported by the puts.
    const res = await client.getAll().prefix(C).exec();
    assert.deepEqual(
      new Set(res.kvs.map((kv) => kv.mod_revision)),
      revisions,
    );
  });

  await step('cleanup', async () => {
    const res = await client.delete().prefix(P);
    assert.ok(Number(res.deleted) > 0);
    assert.equal(await client.getAll().prefix(P).count(), 0);
  });

  await step('close', async () => {
    client.close();
    // Calls after close are rejected by the client, not sent.
    await assert.rejects(client.get(`${P}str`).string());
  });

  clearTimeout(overallTimer);
  currentStep = '(exit after close)';
  // The client must not hold the process open after close(); if it does, fail rather than hang.
  setTimeout(() => fail(`process still alive ${CLOSE_GRACE_MS / 1000} s after client.close()`), CLOSE_GRACE_MS).unref();
  process.stdout.write('# all passed\n');
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
