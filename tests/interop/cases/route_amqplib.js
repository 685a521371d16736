// timeout: 90
//
// Routing through node's amqplib (promise API): exchange and queue declare,
// bind, unbind and delete with their error texts, topic routing,
// exchange-to-exchange bindings, exclusive and auto-delete queue lifetimes,
// dead-lettering with the x-death header checked field by field, and
// priority queues.  Expected codes and texts are RabbitMQ 3.10.8's, taken
// by running the same calls against it; the case runs against Warren only.
'use strict';

const amqp = require('amqplib');

const HOST = process.env.WARREN_HOST || '127.0.0.1';
const PORT = process.env.WARREN_PORT || '5672';
const URL = `amqp://guest:guest@${HOST}:${PORT}/`;
const RUN = `${process.pid.toString(36)}${Date.now().toString(36)}`;
const name = (base) => `${base}-${RUN}`;

const LOCKED = (q) =>
  `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${q}' in vhost '/'. ` +
  'It could be originally declared on another connection or the exclusive property value ' +
  'does not match that of the original declaration.';

let passed = 0;
let failed = 0;

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

function eq(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: got ${g}, expected ${w}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function check(what, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${what}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${what}: ${e && e.stack ? e.stack : e}`);
  }
}

// One connection per check, closed however the check ends.
async function withConn(fn) {
  const conn = await amqp.connect(URL);
  conn.on('error', () => {});
  try {
    return await fn(conn);
  } finally {
    try {
      await conn.close();
    } catch (e) {
      // already closed
    }
  }
}

async function confirmChannel(conn) {
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => {});
  return ch;
}

// fn(ch) on a fresh channel must end in channel.close with (code, text).
async function expectChannelError(conn, fn, code, text) {
  const ch = await conn.createChannel();
  let emitted = null;
  ch.on('error', (e) => {
    emitted = e;
  });
  let err = null;
  try {
    await fn(ch);
  } catch (e) {
    err = e;
  }
  for (let i = 0; !err && !emitted && i < 100; i++) await sleep(20);
  const e = err || emitted;
  assert(e, `succeeded, expected ${code} ${text}`);
  const m = /with message "(.*)"$/s.exec(e.message);
  eq([e.code, m ? m[1] : e.message], [code, text], 'channel error');
}

async function drain(ch, q) {
  const out = [];
  for (;;) {
    const m = await ch.get(q, { noAck: true });
    if (!m) return out;
    out.push(m.content.toString());
  }
}

// Dead-lettering is asynchronous: wait a little for the message.
async function getWait(ch, q, ms = 3000) {
  const end = Date.now() + ms;
  for (;;) {
    const m = await ch.get(q, { noAck: true });
    if (m) return m;
    assert(Date.now() < end, `queue ${q} is empty`);
    await sleep(20);
  }
}

async function pub(ch, x, key, body, opts = {}) {
  ch.publish(x, key, Buffer.from(body), opts);
  await ch.waitForConfirms();
}

async function exists(conn, checkFn) {
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  try {
    await checkFn(ch);
    await ch.close();
    return true;
  } catch (e) {
    assert(e.code === 404, `unexpected error ${e.message}`);
    return false;
  }
}

async function eventuallyGone(conn, checkFn, ms = 3000) {
  const end = Date.now() + ms;
  while (await exists(conn, checkFn)) {
    assert(Date.now() < end, 'still there');
    await sleep(50);
  }
}

async function declareBindDelete() {
  await withConn(async (conn) => {
    const ch = await confirmChannel(conn);
    const x = name('jx');
    const q = name('jq');
    const ok = await ch.assertExchange(x, 'direct', { durable: false });
    eq(ok.exchange, x, 'declare-ok');
    const qok = await ch.assertQueue(q, { durable: false });
    eq([qok.queue, qok.messageCount, qok.consumerCount], [q, 0, 0], 'queue declare-ok');
    await ch.bindQueue(q, x, 'k');
    await pub(ch, x, 'k', 'one');
    await pub(ch, x, 'k', 'two');
    await pub(ch, x, 'nope', 'lost');
    eq((await ch.checkQueue(q)).messageCount, 2, 'message count after routing');
    eq((await ch.purgeQueue(q)).messageCount, 2, 'purge-ok count');
    await ch.unbindQueue(q, x, 'k');
    await pub(ch, x, 'k', 'unbound');
    await pub(ch, '', q, 'default');
    eq((await ch.deleteQueue(q)).messageCount, 1, 'delete-ok count');
    await ch.deleteExchange(x);
    assert(!(await exists(conn, (c) => c.checkQueue(q))), 'queue still there');
    assert(!(await exists(conn, (c) => c.checkExchange(x))), 'exchange still there');
    // Deleting what is not there succeeds.
    await ch.deleteQueue(q);
    await ch.deleteExchange(x);
    await ch.unbindQueue(q, x, 'k');
  });
}

async function declareErrors() {
  await withConn(async (conn) => {
    const x = name('jx-err');
    const setup = await conn.createChannel();
    await setup.assertExchange(x, 'fanout', { durable: false });
    await expectChannelError(conn, (ch) => ch.checkExchange(name('jx-none')), 404,
      `NOT_FOUND - no exchange '${name('jx-none')}' in vhost '/'`);
    await expectChannelError(conn, (ch) => ch.assertExchange(x, 'topic', { durable: false }), 406,
      `PRECONDITION_FAILED - inequivalent arg 'type' for exchange '${x}' in vhost '/': ` +
      "received 'topic' but current is 'fanout'");
    await expectChannelError(conn, (ch) => ch.assertExchange(x, 'fanout', { durable: true }), 406,
      `PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '${x}' in vhost '/': ` +
      "received 'true' but current is 'false'");
    await expectChannelError(conn, (ch) => ch.assertExchange(`amq.j-${RUN}`, 'direct'), 403,
      `ACCESS_REFUSED - exchange name 'amq.j-${RUN}' contains reserved prefix 'amq.*'`);
    await expectChannelError(conn, (ch) => ch.deleteExchange('amq.topic'), 403,
      "ACCESS_REFUSED - deletion of system exchange 'amq.topic' in vhost '/' not allowed");
    await expectChannelError(conn, (ch) => ch.checkQueue(name('jq-none')), 404,
      `NOT_FOUND - no queue '${name('jq-none')}' in vhost '/'`);
    await expectChannelError(conn, (ch) => ch.bindQueue(name('jq-none'), x, ''), 404,
      `NOT_FOUND - no queue '${name('jq-none')}' in vhost '/'`);
    const q = name('jq-err');
    await setup.assertQueue(q, { durable: false, arguments: { 'x-max-length': 3 } });
    // amqplib encodes small integers as 'b' (byte), and the text names the type.
    await expectChannelError(conn, (ch) => ch.assertQueue(q, { durable: false }), 406,
      `PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '${q}' in vhost '/': ` +
      "received none but current is the value '3' of type 'byte'");
    await expectChannelError(conn, (ch) => ch.bindQueue(q, name('jx-none'), ''), 404,
      `NOT_FOUND - no exchange '${name('jx-none')}' in vhost '/'`);
    await setup.bindQueue(q, x, '');
    await expectChannelError(conn, (ch) => ch.deleteExchange(x, { ifUnused: true }), 406,
      `PRECONDITION_FAILED - exchange '${x}' in vhost '/' in use`);
    const pubCh = await confirmChannel(conn);
    await pub(pubCh, x, '', 'full');
    await expectChannelError(conn, (ch) => ch.deleteQueue(q, { ifEmpty: true }), 406,
      `PRECONDITION_FAILED - queue '${q}' in vhost '/' not empty`);
    await expectChannelError(conn, (ch) => ch.checkQueue(''), 404,
      "NOT_FOUND - no queue '' in vhost '/'");
  });
}

async function serverNamed() {
  await withConn(async (conn) => {
    const ch = await confirmChannel(conn);
    const ok = await ch.assertQueue('', { exclusive: true });
    assert(/^amq\.gen-.{8,}$/.test(ok.queue), `server-named queue ${ok.queue}`);
    await pub(ch, '', ok.queue, 'to-gen');
    eq(await drain(ch, ok.queue), ['to-gen'], 'server-named queue contents');
  });
}

const TOPIC = {
  'a.*': ['a.b', 'a.'],
  'a.#': ['a', 'a.b', 'a.b.c', 'a.'],
  '#.c': ['a.b.c', 'c'],
  '*.*.*': ['a.b.c'],
  '#': ['a', 'a.b', 'a.b.c', 'c', 'a.', '', 'b.a'],
  'a': ['a'],
};
const TOPIC_KEYS = ['a', 'a.b', 'a.b.c', 'c', 'a.', '', 'b.a'];

async function topicRouting() {
  await withConn(async (conn) => {
    const ch = await confirmChannel(conn);
    const x = name('jtopic');
    await ch.assertExchange(x, 'topic', { durable: false });
    const qs = {};
    let i = 0;
    for (const pattern of Object.keys(TOPIC)) {
      qs[pattern] = name(`jt${i++}`);
      await ch.assertQueue(qs[pattern], { durable: false });
      await ch.bindQueue(qs[pattern], x, pattern);
    }
    for (const key of TOPIC_KEYS) ch.publish(x, key, Buffer.from(key));
    await ch.waitForConfirms();
    const bad = [];
    for (const pattern of Object.keys(TOPIC)) {
      const got = await drain(ch, qs[pattern]);
      if (JSON.stringify(got) !== JSON.stringify(TOPIC[pattern])) {
        const want = JSON.stringify(TOPIC[pattern]);
        bad.push(`${pattern}: got ${JSON.stringify(got)}, expected ${want}`);
      }
    }
    assert(bad.length === 0, bad.join('; '));
    await ch.unbindQueue(qs['#'], x, '#');
    await pub(ch, x, 'z', 'after-unbind');
    eq(await drain(ch, qs['#']), [], 'unbound # queue');
  });
}

async function exchangeToExchange() {
  await withConn(async (conn) => {
    const ch = await confirmChannel(conn);
    const src = name('je2e-src');
    const dst = name('je2e-dst');
    const q = name('je2e-q');
    await ch.assertExchange(src, 'topic', { durable: false });
    await ch.assertExchange(dst, 'fanout', { durable: false });
    await ch.assertQueue(q, { durable: false });
    await ch.bindExchange(dst, src, 'x.*');
    await ch.bindExchange(src, dst, '');  // a loop: still one copy
    await ch.bindQueue(q, dst, '');
    await pub(ch, src, 'x.y', 'hit');
    await pub(ch, src, 'y.y', 'miss');
    eq(await drain(ch, q), ['hit'], 'through the e2e binding');
    await ch.unbindExchange(dst, src, 'x.*');
    await pub(ch, src, 'x.y', 'gone');
    eq(await drain(ch, q), [], 'after unbindExchange');
  });
}

async function exclusiveLifetime() {
  const q = name('jexcl');
  const owner = await amqp.connect(URL);
  owner.on('error', () => {});
  const och = await owner.createChannel();
  await och.assertQueue(q, { exclusive: true });
  await withConn(async (conn) => {
    await expectChannelError(conn, (ch) => ch.checkQueue(q), 405, LOCKED(q));
    await expectChannelError(conn, (ch) => ch.assertQueue(q, { exclusive: true }), 405, LOCKED(q));
    await expectChannelError(conn, (ch) => ch.consume(q, () => {}), 405, LOCKED(q));
    await expectChannelError(conn, (ch) => ch.deleteQueue(q), 405, LOCKED(q));
    await owner.close();
    await eventuallyGone(conn, (ch) => ch.checkQueue(q));
  });
}

async function autoDeleteLifetime() {
  const q = name('jautodel');
  await withConn(async (conn) => {
    const ch = await conn.createChannel();
    await ch.assertQueue(q, { durable: false, autoDelete: true });
    await sleep(200);
    assert(await exists(conn, (c) => c.checkQueue(q)), 'deleted before it ever had a consumer');
    const a = await ch.consume(q, () => {});
    const b = await ch.consume(q, () => {});
    await ch.cancel(a.consumerTag);
    await sleep(200);
    assert(await exists(conn, (c) => c.checkQueue(q)), 'deleted with a consumer left');
    await ch.cancel(b.consumerTag);
    await eventuallyGone(conn, (c) => c.checkQueue(q));
  });
}

async function deadLetter() {
  await withConn(async (conn) => {
    const ch = await confirmChannel(conn);
    const dlx = name('jdlx');
    const dlq = name('jdlq');
    const q = name('jdl-src');
    await ch.assertExchange(dlx, 'topic', { durable: false });
    await ch.assertQueue(dlq, { durable: false });
    await ch.bindQueue(dlq, dlx, '#');
    await ch.assertQueue(q, {
      durable: false,
      deadLetterExchange: dlx,
      deadLetterRoutingKey: 'dead.key',
    });
    await ch.bindQueue(q, 'amq.topic', `src.${RUN}`);
    await pub(ch, 'amq.topic', `src.${RUN}`, 'doomed', {
      headers: { keep: 'me' },
      expiration: '60000',
      correlationId: 'c-1',
    });
    const m = await ch.get(q, { noAck: false });
    assert(m, 'source queue empty');
    ch.reject(m, false);
    const d = await getWait(ch, dlq);
    eq([d.fields.exchange, d.fields.routingKey, d.content.toString()],
      [dlx, 'dead.key', 'doomed'], 'dead-lettered delivery');
    eq(d.properties.correlationId, 'c-1', 'properties kept');
    eq(d.properties.expiration, undefined, 'expiration removed');
    const h = d.properties.headers;
    eq(h.keep, 'me', 'other headers kept');
    eq([h['x-first-death-reason'], h['x-first-death-queue'], h['x-first-death-exchange']],
      ['rejected', q, 'amq.topic'], 'x-first-death-*');
    const deaths = h['x-death'];
    assert(Array.isArray(deaths) && deaths.length === 1, `x-death ${JSON.stringify(deaths)}`);
    const xd = deaths[0];
    eq(Object.keys(xd).sort(),
      ['count', 'exchange', 'original-expiration', 'queue', 'reason', 'routing-keys', 'time'],
      'x-death fields');
    eq(xd.count, 1, 'count');
    eq(xd.reason, 'rejected', 'reason');
    eq(xd.queue, q, 'queue');
    eq(xd.exchange, 'amq.topic', 'exchange');
    eq(xd['routing-keys'], [`src.${RUN}`], 'routing-keys');
    eq(xd['original-expiration'], '60000', 'original-expiration');
    assert(xd.time && xd.time['!'] === 'timestamp' &&
      Math.abs(xd.time.value - Date.now() / 1000) < 60, `time ${JSON.stringify(xd.time)}`);

    // Expired: the queue's TTL, no dead-letter routing key (original key kept).
    const q2 = name('jdl-ttl');
    await ch.assertQueue(q2, { durable: false, deadLetterExchange: dlx, messageTtl: 100 });
    await pub(ch, '', q2, 'stale');
    const e = await getWait(ch, dlq, 4000);
    eq([e.fields.routingKey, e.content.toString()], [q2, 'stale'], 'expired delivery');
    const ed = e.properties.headers['x-death'][0];
    eq([ed.reason, ed.queue, ed.exchange, ed['routing-keys'], ed.count],
      ['expired', q2, '', [q2], 1], 'x-death for expired');
  });
}

async function priorities() {
  await withConn(async (conn) => {
    const ch = await confirmChannel(conn);
    const q = name('jprio');
    await ch.assertQueue(q, { durable: false, maxPriority: 3 });
    const sent = [
      ['low', 1], ['none', undefined], ['high', 3], ['over', 7], ['mid', 2], ['high2', 3],
    ];
    for (const [body, priority] of sent) {
      ch.sendToQueue(q, Buffer.from(body), priority === undefined ? {} : { priority });
    }
    await ch.waitForConfirms();
    eq(await drain(ch, q), ['high', 'over', 'high2', 'mid', 'low', 'none'], 'priority order');
    await expectChannelError(conn, (c) => c.assertQueue(name('jprio-bad'),
      { durable: false, maxPriority: 256 }), 406,
      `PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue '${name('jprio-bad')}' ` +
      "in vhost '/': {max_value_exceeded,256}");
  });
}

(async () => {
  await check('declare, bind, unbind, delete', declareBindDelete);
  await check('declare and bind errors', declareErrors);
  await check('server-named queue', serverNamed);
  await check('topic routing', topicRouting);
  await check('exchange-to-exchange bindings', exchangeToExchange);
  await check('exclusive queue lifetime', exclusiveLifetime);
  await check('auto-delete queue lifetime', autoDeleteLifetime);
  await check('dead-lettering with x-death', deadLetter);
  await check('priority queue', priorities);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
})();
