-- luacheck configuration: the globals each place may use. Run from the
-- repository root: `luacheck lua spec examples bench tests` (ctest runs it
-- as the test "luacheck"). A warning that is a false positive is silenced
-- on its line (`-- luacheck: ignore CODE`) with the reason beside it.
-- SPDX-License-Identifier: MIT
std = "lua54"

-- The specs run under busted: describe, it, assert, spy... (helper.lua
-- and the other spec modules as well: they use luassert's assert).
files["spec"] = {std = "+busted"}

-- Run by examples/embed/host.c: the host sets the globals lasio (the
-- module) and host (its async C functions).
files["examples/embed/sensors.lua"] = {read_globals = {"lasio", "host"}}

-- Untrusted scripts run in a sandbox environment that holds lasio (the
-- hostile corpus of spec/untrusted_spec.lua, the scripts of
-- examples/embed/untrusted.c); some of them write to it on purpose.
files["spec/hostile"] = {std = "+busted", globals = {"lasio", "string"}}
files["examples/embed/untrusted"] = {read_globals = {"lasio"}}
