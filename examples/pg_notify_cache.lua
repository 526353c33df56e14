-- NOTIFY-driven cache invalidation: reads of a price go through a local
-- cache; a trigger in the database sends NOTIFY on every change, and a
-- listener task drops the changed entry, so the next read sees the new
-- price whichever process wrote it.
-- Usage: lasio examples/pg_notify_cache.lua CONNINFO
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local pg = require "lasio.pg"

local conninfo = assert(arg[1], "usage: pg_notify_cache.lua CONNINFO")
local db <close> = pg.connect(conninfo)
db:query([[CREATE TABLE IF NOT EXISTS prices (
    item text PRIMARY KEY, cents int NOT NULL)]])
db:query([[CREATE OR REPLACE FUNCTION prices_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('prices', COALESCE(NEW.item, OLD.item));
    RETURN NULL;
END $$ LANGUAGE plpgsql]])
db:query("DROP TRIGGER IF EXISTS prices_notify ON prices")
db:query([[CREATE TRIGGER prices_notify AFTER INSERT OR UPDATE OR DELETE
    ON prices FOR EACH ROW EXECUTE FUNCTION prices_changed()]])
db:query([[INSERT INTO prices VALUES ('tea', 250), ('cake', 400)
    ON CONFLICT (item) DO UPDATE SET cents = EXCLUDED.cents]])

local cache, loads = {}, 0

local function price(item)
    local v = cache[item]
    if v == nil then
        loads = loads + 1
        local row = db:query("SELECT cents FROM prices WHERE item = $1",
            item)[1]
        v = row and row.cents or false
        cache[item] = v
    end
    return v or nil
end

-- The listener has a connection of its own: a LISTENing connection only
-- waits, while the cache's queries go on db.
local listener <close> = pg.connect(conninfo)
local invalidated = lasio.Queue()
local notifications = listener:listen("prices")
local watcher = lasio.spawn(function()
    for _, item in notifications do
        cache[item] = nil
        invalidated:put(item)
    end
end)

print("tea", price("tea"), "cake", price("cake"))
print("tea", price("tea"), "(cached: loads = " .. loads .. ")")

-- another connection changes the price, as another process would
local writer <close> = pg.connect(conninfo)
writer:query("UPDATE prices SET cents = $1 WHERE item = $2", 275, "tea")
print("invalidated", invalidated:get())
print("tea", price("tea"), "(reloaded: loads = " .. loads .. ")")
writer:query("DELETE FROM prices WHERE item = $1", "cake")
print("invalidated", invalidated:get())
print("cake", price("cake"))

watcher:cancel()
pcall(lasio.await, watcher)
