// Peer of bench/redis.lua: node's ioredis (npm, installed into
// bench/peers/node_modules by bench/redis.sh), the same workload: GET/SET
// from one connection, plain and pipelined (DEPTH in flight).
// Usage: node bench/peers/redis_ioredis.js PORT [N [DEPTH]]
// SPDX-License-Identifier: MIT
"use strict";
const Redis = require("ioredis");

function cpu() {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
}

async function main(port, n, depth) {
    const client = new Redis({ host: "127.0.0.1", port });
    const value = "v".repeat(16);
    await client.set("bench:k", value);

    let cpu0 = cpu(), t0 = performance.now();
    for (let i = 1; i <= n; i++) {
        if (i % 2 === 0) await client.set("bench:k", value);
        else await client.get("bench:k");
    }
    const cpuPlain = cpu() - cpu0, wallPlain = (performance.now() - t0) / 1e3;

    cpu0 = cpu();
    t0 = performance.now();
    for (let b = 0; b < Math.floor(n / depth); b++) {
        const pipe = client.pipeline();
        for (let i = 1; i <= depth; i++) {
            if (i % 2 === 0) pipe.set("bench:k", value);
            else pipe.get("bench:k");
        }
        await pipe.exec();
    }
    const cpuPipe = cpu() - cpu0, wallPipe = (performance.now() - t0) / 1e3;
    client.disconnect();

    const total = Math.floor(n / depth) * depth;
    console.log(`RESULT client=ioredis n=${n} depth=${depth} ` +
        `plain_per_cpu_s=${Math.floor(n / cpuPlain)} ` +
        `plain_per_s=${Math.floor(n / wallPlain)} ` +
        `pipelined_per_cpu_s=${Math.floor(total / cpuPipe)} ` +
        `pipelined_per_s=${Math.floor(total / wallPipe)}`);
}

const args = process.argv.slice(2).map(Number);
main(args[0] || 6379, args[1] || 100000, args[2] || 100);
