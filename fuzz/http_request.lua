-- The HTTP request parser target: see http_parse.lua.
-- SPDX-License-Identifier: MIT
return require("http_parse")("request")
