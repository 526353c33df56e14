-- The WebSocket server side target: see websocket_peer.lua.
-- SPDX-License-Identifier: MIT
return require("websocket_peer")(false)
