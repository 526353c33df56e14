/* A core file that reaches up into the network layer. */
#include "core/core.h"
#include "net/net.h"
