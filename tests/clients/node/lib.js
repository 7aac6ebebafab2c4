// Shared by the Node.js client tests: PASS/FAIL lines, assertions, bounded retries, and the
// cluster run.sh started (RD_* environment variables).
'use strict';
const { execFileSync } = require('child_process');
const assert = require('assert');

const env = {
  tmp: process.env.RD_TMP,
  leader: Number(process.env.RD_LEADER_PORT),
  follower: Number(process.env.RD_FOLLOWER_PORT),
  followerNode: process.env.RD_FOLLOWER_NODE,
  authPort: Number(process.env.RD_AUTH_PORT),
};

function makeCheck(prefix) {
  return async function check(name, fn) {
    try {
      await fn();
      console.log(`PASS ${prefix}: ${name}`);
    } catch (e) {
      console.log(`FAIL ${prefix}: ${name}: ${e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e}`);
    }
  };
}

const eq = (got, want) => assert.deepStrictEqual(got, want);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Calls fn until it resolves, for at most `ms`; rethrows the last error.
async function retry(fn, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(200);
    }
  }
}

// kill -9 the follower's redraft and start it again on the same data.
function restartFollower() {
  execFileSync(`${env.tmp}/restart.sh`, [env.followerNode]);
}

// A promise that fails after ms, so a hung client call is a failure, not a hang.
function within(ms, p, what) {
  let t;
  return Promise.race([
    p,
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: no answer in ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

module.exports = { env, makeCheck, eq, sleep, retry, restartFollower, within };
