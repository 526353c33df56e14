/* A network file that uses the core: allowed. */
#include "core/core.h"
#include "net/net.h"
