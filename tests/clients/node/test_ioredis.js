// ioredis against the cluster run.sh started. At connect ioredis sends INFO (its ready check),
// then SELECT and CLIENT SETNAME when configured.
'use strict';
const Redis = require('ioredis');
const { env, makeCheck, eq, retry, restartFollower, within } = require('./lib');

const check = makeCheck('ioredis');
const connect = async (port, extra = {}) => {
  const c = new Redis({
    host: '127.0.0.1', port, lazyConnect: true, connectTimeout: 5000, maxRetriesPerRequest: 3,
    retryStrategy: () => 200, ...extra,
  });
  c.on('error', () => {}); // reconnects report here; the test's own calls decide
  await within(10000, c.connect(), 'connect');
  return c;
};

async function suite(where, port) {
  const p = `io:${where}:`;
  let c;
  await check(`${where}: connect (INFO ready check) and SET/GET`, async () => {
    c = await connect(port);
    eq(c.status, 'ready');
    eq(await c.set(`${p}k`, 'v'), 'OK');
    eq(await c.get(`${p}k`), 'v');
    eq(await c.incr(`${p}n`), 1);
    eq(await c.set(`${p}e`, '1', 'EX', 100), 'OK');
    const ttl = await c.ttl(`${p}e`);
    if (ttl < 90 || ttl > 100) throw new Error(`ttl ${ttl}`);
  });
  if (!c) return;
  await check(`${where}: pipeline`, async () => {
    const pl = c.pipeline();
    for (let i = 0; i < 50; i++) pl.set(`${p}pipe:${i}`, i);
    pl.get(`${p}pipe:49`);
    const res = await pl.exec();
    eq(res.filter(([err]) => err).length, 0);
    eq(res[50][1], '49');
  });
  await check(`${where}: multi/exec`, async () => {
    const res = await c.multi().set(`${p}tx`, 'a').append(`${p}tx`, 'b').get(`${p}tx`).exec();
    eq(res, [[null, 'OK'], [null, 2], [null, 'ab']]);
  });
  await check(`${where}: eval and defineCommand (EVALSHA, falling back to EVAL)`, async () => {
    eq(await c.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, `${p}lua`, 4), 4);
    c.defineCommand('double', { numberOfKeys: 1, lua: "return redis.call('INCRBY', KEYS[1], ARGV[1]) * 2" });
    eq(await c.double(`${p}lua:n`, 3), 6);
    eq(await c.double(`${p}lua:n`, 1), 8);
  });
  await check(`${where}: db: 3 and connectionName at connect`, async () => {
    const d = await connect(port, { db: 3, connectionName: 'ioname' });
    eq(await d.set(`${p}db3`, 'x'), 'OK');
    eq(await d.get(`${p}db3`), 'x');
    eq(await d.client('GETNAME'), 'ioname');
    eq(await c.get(`${p}db3`), null);
    d.disconnect();
  });
  await check(`${where}: CLIENT CONSISTENCY EVENTUAL`, async () => {
    eq(await c.call('CLIENT', 'CONSISTENCY', 'EVENTUAL'), 'OK');
    eq(String(await c.call('CLIENT', 'CONSISTENCY')).toLowerCase(), 'eventual');
  });
  await check(`${where}: PUBLISH`, async () => {
    eq(typeof (await c.publish(`${p}chan`, 'hi')), 'number');
  });
  c.disconnect();
}

(async () => {
  await suite('follower', env.follower);
  await suite('leader', env.leader);
  await check('AUTH default/pw', async () => {
    const c = await connect(env.authPort, { username: 'default', password: 'pw' });
    eq(await c.ping(), 'PONG');
    c.disconnect();
  });
  await check('SUBSCRIBE receives what PUBLISH sends', async () => {
    const s = await connect(env.follower);
    const p = await connect(env.leader);
    const got = new Promise((resolve) => s.on('message', (ch, msg) => resolve(`${ch}:${msg}`)));
    await within(5000, s.subscribe('io:chan'), 'SUBSCRIBE');
    await p.publish('io:chan', 'hello');
    eq(await within(5000, got, 'message'), 'io:chan:hello');
    s.disconnect();
    p.disconnect();
  });
  await check('reconnects after its node is killed -9 and restarted', async () => {
    const c = await connect(env.follower);
    eq(await c.set('io:re', 'before'), 'OK');
    restartFollower();
    const t0 = Date.now();
    eq(await retry(() => within(3000, c.get('io:re'), 'GET')), 'before');
    eq(await retry(() => within(3000, c.set('io:re', 'after'), 'SET')), 'OK');
    console.log(`  (served again ${((Date.now() - t0) / 1000).toFixed(1)}s after the restart)`);
    c.disconnect();
  });
  process.exit(0);
})();
