// timeout: 90
//
// Delivery through node's amqplib (promise API): a work queue with prefetch
// (limits, fair dispatch to the worker that acks, requeue to it when the
// other worker's channel closes), a confirm channel with per-publish
// callbacks and waitForConfirms, nack and reject with and without requeue,
// a channel error for an unknown delivery tag, mandatory returns, and the
// consumer cancel notification when the queue is deleted.  Expected values
// are RabbitMQ 3.10's.
'use strict';

const amqp = require('amqplib');

const HOST = process.env.WARREN_HOST || '127.0.0.1';
const PORT = process.env.WARREN_PORT || '5672';
const URL = `amqp://guest:guest@${HOST}:${PORT}/`;
const PFX = `dj${process.pid}-`;

let passed = 0;
let failed = 0;
const created = [];

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

function eq(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: got ${g}, expected ${w}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll until cond() holds or ms pass; the final answer of cond().
async function until(cond, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(10);
  return cond();
}

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

async function declare(ch, name) {
  const q = PFX + name;
  await ch.assertQueue(q, { durable: false });
  created.push(q);
  return q;
}

async function depth(conn, q) {
  const ch = await conn.createChannel();
  const ok = await ch.checkQueue(q);
  await ch.close();
  return ok.messageCount;
}

async function workQueue() {
  const conn = await amqp.connect(URL);
  try {
    const setup = await conn.createChannel();
    const q = await declare(setup, 'work');
    const fastCh = await conn.createChannel();
    const slowCh = await conn.createChannel();
    await fastCh.prefetch(2);
    await slowCh.prefetch(2);
    const fast = [];
    const slow = [];
    let acking = false;
    await fastCh.consume(q, (m) => {
      fast.push(m);
      if (acking) fastCh.ack(m);
    });
    await slowCh.consume(q, (m) => slow.push(m));
    for (let i = 0; i < 10; i++) setup.sendToQueue(q, Buffer.from(`job-${i}`));
    await until(() => fast.length + slow.length >= 4);
    await sleep(300);
    eq([fast.length, slow.length], [2, 2], 'prefetch 2 each, before any ack');
    // The fast worker starts acking: everything left goes to it.
    acking = true;
    for (const m of fast) fastCh.ack(m);
    await until(() => fast.length >= 8);
    await sleep(300);
    eq([fast.length, slow.length], [8, 2], 'after the fast worker acks');
    // The slow worker dies: its two come back, redelivered, to the fast one.
    await slowCh.close();
    await until(() => fast.length >= 10);
    eq(fast.length, 10, 'deliveries to the fast worker after requeue');
    const again = fast.slice(8).map((m) => [m.content.toString(), m.fields.redelivered]).sort();
    const slowBodies = slow.map((m) => m.content.toString()).sort();
    eq(again, slowBodies.map((b) => [b, true]), 'requeued from the closed channel');
    const all = fast.map((m) => m.content.toString()).sort();
    eq(all, [...Array(10).keys()].map((i) => `job-${i}`).sort(), 'every job handled once');
    await sleep(100);
    eq(await depth(conn, q), 0, 'queue depth at the end');
  } finally {
    await conn.close();
  }
}

async function confirms() {
  const conn = await amqp.connect(URL);
  try {
    const ch = await conn.createConfirmChannel();
    const q = await declare(ch, 'confirm');
    const n = 1000;
    const calls = new Array(n).fill(0);
    const errs = [];
    for (let i = 0; i < n; i++) {
      ch.sendToQueue(q, Buffer.from(String(i)), { persistent: false }, (err) => {
        calls[i]++;
        if (err) errs.push(err);
      });
    }
    await ch.waitForConfirms();
    assert(errs.length === 0, `nacked: ${errs.length}`);
    const wrong = calls.findIndex((c) => c !== 1);
    assert(wrong < 0, `publish ${wrong} confirmed ${calls[wrong]} times`);
    eq(await depth(conn, q), n, 'queue depth after confirms');
  } finally {
    await conn.close();
  }
}

async function nackAndReject() {
  const conn = await amqp.connect(URL);
  try {
    const ch = await conn.createChannel();
    const q = await declare(ch, 'nack');
    for (const b of ['a', 'b', 'c', 'd']) ch.sendToQueue(q, Buffer.from(b));
    const got = [];
    await ch.consume(q, (m) => got.push(m));
    await until(() => got.length >= 4);
    eq(got.map((m) => m.fields.deliveryTag), [1, 2, 3, 4], 'delivery tags');
    ch.nack(got[1], true, true); // a and b back, in order
    await until(() => got.length >= 6);
    eq(got.slice(4).map((m) => [m.content.toString(), m.fields.redelivered]),
      [['a', true], ['b', true]], 'nack allUpTo with requeue');
    ch.reject(got[4], true); // a again
    await until(() => got.length >= 7);
    eq([got[6].content.toString(), got[6].fields.redelivered], ['a', true], 'reject with requeue');
    ch.reject(got[6], false); // drop a
    ch.nack(got[5], false, false); // drop b
    ch.ack(got[2]);
    ch.ack(got[3]);
    await sleep(200);
    eq(got.length, 7, 'nothing more after dropping');
    eq(await depth(conn, q), 0, 'queue depth');
  } finally {
    await conn.close();
  }
}

async function unknownTag() {
  const conn = await amqp.connect(URL);
  try {
    const ch = await conn.createChannel();
    let err = null;
    ch.on('error', (e) => { err = e; });
    const closed = new Promise((resolve) => ch.on('close', resolve));
    ch.ack({ fields: { deliveryTag: 42 } });
    await Promise.race([closed, sleep(5000)]);
    assert(err, 'no channel error for an unknown delivery tag');
    eq(err.code, 406, 'reply code');
    assert(err.message.includes('PRECONDITION_FAILED - unknown delivery tag 42'),
      `reply text: ${err.message}`);
    // the connection survives a channel error
    const ch2 = await conn.createChannel();
    await ch2.checkExchange('amq.direct');
  } finally {
    await conn.close();
  }
}

async function mandatoryReturn() {
  const conn = await amqp.connect(URL);
  try {
    const ch = await conn.createConfirmChannel();
    const returned = [];
    let ackedAfterReturns = -1;
    ch.on('return', (m) => returned.push(m));
    ch.publish('amq.direct', 'nobody-home', Buffer.from('boomerang'), { mandatory: true },
      () => { ackedAfterReturns = returned.length; });
    await ch.waitForConfirms();
    eq(returned.length, 1, 'returns');
    const f = returned[0].fields;
    eq([f.replyCode, f.replyText, f.exchange, f.routingKey, returned[0].content.toString()],
      [312, 'NO_ROUTE', 'amq.direct', 'nobody-home', 'boomerang'], 'basic.return');
    eq(ackedAfterReturns, 1, 'the return arrives before the confirm');
  } finally {
    await conn.close();
  }
}

async function cancelNotification() {
  const conn = await amqp.connect(URL);
  try {
    const ch = await conn.createChannel();
    const q = await declare(ch, 'cancel');
    const calls = [];
    const cancels = [];
    ch.on('cancel', (fields) => cancels.push(fields.consumerTag));
    const { consumerTag } = await ch.consume(q, (m) => calls.push(m));
    const other = await conn.createChannel();
    await other.deleteQueue(q);
    await until(() => calls.length > 0);
    eq(calls, [null], 'consumer callback on server cancel');
    eq(cancels, [consumerTag], 'cancel event tag');
    // the channel is still usable
    const q2 = await declare(ch, 'cancel-after');
    ch.sendToQueue(q2, Buffer.from('x'));
    const m = await (async () => {
      for (let i = 0; i < 50; i++) {
        const got = await ch.get(q2, { noAck: true });
        if (got) return got;
        await sleep(20);
      }
      return false;
    })();
    assert(m && m.content.toString() === 'x', 'channel unusable after cancel');
  } finally {
    await conn.close();
  }
}

async function cleanup() {
  const conn = await amqp.connect(URL);
  const ch = await conn.createChannel();
  for (const q of created) await ch.deleteQueue(q);
  await conn.close();
}

(async () => {
  await check('work_queue_prefetch', workQueue);
  await check('confirm_channel', confirms);
  await check('nack_and_reject', nackAndReject);
  await check('unknown_delivery_tag', unknownTag);
  await check('mandatory_return', mandatoryReturn);
  await check('cancel_notification', cancelNotification);
  await check('cleanup', cleanup);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})();
