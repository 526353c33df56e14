// PostgreSQL client benchmark, node-postgres side (bench/README.md,
// "PostgreSQL"): the workload of bench/pg.lua; INFLIGHT promises share one
// pg.Client, which queues them.
// Usage: node bench/peers/pg_node.js HOST PORT N INFLIGHT
// SPDX-License-Identifier: MIT
'use strict';
const { Client } = require('pg');

const SQL = 'SELECT id, v FROM kv WHERE id = $1';

async function worker(db, count, seed) {
  let key = seed;
  for (let i = 0; i < count; i++) {
    key = (key % 1000) + 1;
    const res = await db.query(SQL, [key]);
    if (res.rows[0].id !== key) throw new Error('wrong row');
  }
}

async function main() {
  const [host, port, nArg, inflightArg] = process.argv.slice(2);
  let n = Number(nArg);
  const inflight = Number(inflightArg);
  const db = new Client({ host, port: Number(port), user: 'postgres', database: 'postgres' });
  await db.connect();
  await db.query(SQL, [1]);
  const wall0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  if (inflight <= 1) {
    await worker(db, n, 0);
  } else {
    const each = Math.floor(n / inflight);
    const tasks = [];
    for (let i = 1; i <= inflight; i++) tasks.push(worker(db, each, i * 7));
    await Promise.all(tasks);
    n = each * inflight;
  }
  const wall = Number(process.hrtime.bigint() - wall0) / 1e9;
  const c = process.cpuUsage(cpu0);
  const cpu = (c.user + c.system) / 1e6;
  await db.end();
  console.log(`RESULT peer=node-pg inflight=${inflight} n=${n} per_cpu_s=${Math.floor(n / cpu)} per_s=${Math.floor(n / wall)}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
