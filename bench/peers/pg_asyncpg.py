# PostgreSQL client benchmark, asyncpg side (bench/README.md, "PostgreSQL"):
# the workload of bench/pg.lua. asyncpg runs one operation at a time on a
# connection, so INFLIGHT tasks share it through a pool of one connection.
# Usage: python3 bench/peers/pg_asyncpg.py HOST PORT N INFLIGHT
# SPDX-License-Identifier: MIT
import asyncio
import sys
import time

import asyncpg

SQL = "SELECT id, v FROM kv WHERE id = $1"


async def worker(db, count, seed):
    key = seed
    for _ in range(count):
        key = key % 1000 + 1
        row = await db.fetchrow(SQL, key)
        assert row["id"] == key


async def main():
    host, port, n, inflight = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if inflight <= 1:
        db = await asyncpg.connect(host=host, port=port, user="postgres", database="postgres")
        await db.fetchrow(SQL, 1)
        wall0, cpu0 = time.monotonic(), time.process_time()
        await worker(db, n, 0)
    else:
        db = await asyncpg.create_pool(host=host, port=port, user="postgres",
                                       database="postgres", min_size=1, max_size=1)
        await db.fetchrow(SQL, 1)
        wall0, cpu0 = time.monotonic(), time.process_time()
        await asyncio.gather(*(worker(db, n // inflight, i * 7) for i in range(1, inflight + 1)))
        n = (n // inflight) * inflight
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    await db.close()
    print(f"RESULT peer=asyncpg inflight={inflight} n={n} per_cpu_s={int(n / cpu)} per_s={int(n / wall)}")


asyncio.run(main())
