// node-redis (the `redis` npm package, v4) against the cluster run.sh started.
'use strict';
const { createClient } = require('redis');
const { env, makeCheck, eq, retry, restartFollower, within } = require('./lib');

const check = makeCheck('node-redis');
const connect = async (port, extra = {}) => {
  const c = createClient({
    socket: { host: '127.0.0.1', port, connectTimeout: 5000, reconnectStrategy: () => 200 },
    ...extra,
  });
  const errors = [];
  c.on('error', (e) => errors.push(e)); // reconnects report here; the test's own calls decide
  await within(10000, c.connect(), 'connect');
  c.seenErrors = errors;
  return c;
};

async function suite(where, port) {
  const p = `nr:${where}:`;
  let c;
  await check(`${where}: connect (CLIENT SETINFO at connect is tolerated) and SET/GET`, async () => {
    c = await connect(port);
    eq(await c.set(`${p}k`, 'v'), 'OK');
    eq(await c.get(`${p}k`), 'v');
    eq(await c.incr(`${p}n`), 1);
    eq(await c.hSet(`${p}h`, { a: '1' }), 1);
    eq({ ...(await c.hGetAll(`${p}h`)) }, { a: '1' });
  });
  if (!c) return;
  await check(`${where}: pipeline (commands batched in one tick)`, async () => {
    const res = await Promise.all(Array.from({ length: 50 }, (_, i) => c.set(`${p}pipe:${i}`, String(i))));
    eq(res.every((r) => r === 'OK'), true);
    eq(await c.get(`${p}pipe:49`), '49');
  });
  await check(`${where}: multi/exec`, async () => {
    eq(await c.multi().set(`${p}tx`, 'a').append(`${p}tx`, 'b').get(`${p}tx`).exec(), ['OK', 2, 'ab']);
  });
  await check(`${where}: eval and evalSha`, async () => {
    eq(await c.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", { keys: [`${p}lua`], arguments: ['4'] }), 4);
    const sha = await c.scriptLoad("return redis.call('GET', KEYS[1])");
    eq(await c.evalSha(sha, { keys: [`${p}lua`] }), '4');
  });
  await check(`${where}: database: 3 and name: at connect`, async () => {
    const d = await connect(port, { database: 3, name: 'nrname' });
    eq(await d.set(`${p}db3`, 'x'), 'OK');
    eq(await d.get(`${p}db3`), 'x');
    eq(await d.clientGetName(), 'nrname');
    eq(await c.get(`${p}db3`), null);
    await d.quit();
  });
  await check(`${where}: CLIENT CONSISTENCY EVENTUAL`, async () => {
    eq(await c.sendCommand(['CLIENT', 'CONSISTENCY', 'EVENTUAL']), 'OK');
    eq(String(await c.sendCommand(['CLIENT', 'CONSISTENCY'])).toLowerCase(), 'eventual');
  });
  await check(`${where}: PUBLISH`, async () => {
    eq(typeof (await c.publish(`${p}chan`, 'hi')), 'number');
  });
  await c.quit();
}

(async () => {
  await suite('follower', env.follower);
  await suite('leader', env.leader);
  await check('AUTH default/pw', async () => {
    const c = await connect(env.authPort, { username: 'default', password: 'pw' });
    eq(await c.ping(), 'PONG');
    await c.quit();
  });
  await check('SUBSCRIBE receives what PUBLISH sends', async () => {
    const c = await connect(env.follower);
    const s = c.duplicate();
    s.on('error', () => {});
    await s.connect();
    let resolve;
    const got = new Promise((r) => (resolve = r));
    await within(5000, s.subscribe('nr:chan', (msg) => resolve(msg)), 'SUBSCRIBE');
    await c.publish('nr:chan', 'hello');
    eq(await within(5000, got, 'message'), 'hello');
    await s.disconnect();
    await c.quit();
  });
  await check('reconnects after its node is killed -9 and restarted', async () => {
    const c = await connect(env.follower);
    eq(await c.set('nr:re', 'before'), 'OK');
    restartFollower();
    const t0 = Date.now();
    eq(await retry(() => within(3000, c.get('nr:re'), 'GET')), 'before');
    eq(await retry(() => within(3000, c.set('nr:re', 'after'), 'SET')), 'OK');
    console.log(`  (served again ${((Date.now() - t0) / 1000).toFixed(1)}s after the restart)`);
    await c.quit();
  });
  process.exit(0);
})();
