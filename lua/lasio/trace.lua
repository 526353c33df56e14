-- lasio.trace: recording the loop's events (docs/reference/trace.md). The
-- functions are C (src/core/tracelua.c); this part only makes them
-- lasio.trace on first use, so the lasio table stays as small as before
-- for a script that never traces.
-- SPDX-License-Identifier: MIT
return require("lasio.core").internal.trace_api
