-- lasio.locks: being written (issue 4).
-- SPDX-License-Identifier: MIT
return {}
