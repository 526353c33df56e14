# Peer of bench/redis.lua: Python's redis.asyncio (Debian python3-redis,
# with python3-hiredis's parser when installed), the same workload:
# GET/SET from one connection, plain and pipelined (DEPTH in flight).
# Usage: python3 bench/peers/redis_asyncio.py PORT [N [DEPTH]]
# SPDX-License-Identifier: MIT
import asyncio
import sys
import time

import redis.asyncio as aioredis


async def main(port, n, depth):
    client = aioredis.Redis(host="127.0.0.1", port=port)
    value = "v" * 16
    await client.set("bench:k", value)

    cpu0, t0 = time.process_time(), time.monotonic()
    for i in range(1, n + 1):
        if i % 2 == 0:
            await client.set("bench:k", value)
        else:
            await client.get("bench:k")
    cpu_plain, wall_plain = time.process_time() - cpu0, time.monotonic() - t0

    cpu0, t0 = time.process_time(), time.monotonic()
    for _ in range(n // depth):
        pipe = client.pipeline(transaction=False)
        for i in range(1, depth + 1):
            if i % 2 == 0:
                pipe.set("bench:k", value)
            else:
                pipe.get("bench:k")
        await pipe.execute()
    cpu_pipe, wall_pipe = time.process_time() - cpu0, time.monotonic() - t0
    await client.close()

    total = n // depth * depth
    print("RESULT client=redis.asyncio n=%d depth=%d plain_per_cpu_s=%d "
          "plain_per_s=%d pipelined_per_cpu_s=%d pipelined_per_s=%d" % (
              n, depth, n / cpu_plain, n / wall_plain, total / cpu_pipe,
              total / wall_pipe))


args = [int(a) for a in sys.argv[1:]]
asyncio.run(main(args[0] if args else 6379, args[1] if len(args) > 1
                 else 100000, args[2] if len(args) > 2 else 100))
