/* libazfunc — umbrella header: includes every stable-tier header. */
#ifndef AZFUNC_AZFUNC_H
#define AZFUNC_AZFUNC_H

#include "azfunc/common.h"
#include "azfunc/codec.h"
#include "azfunc/python.h"
#include "azfunc/host.h"
#include "azfunc/transport.h"
#include "azfunc/worker.h"
#include "azfunc/value.h"
#include "azfunc/registry.h"

#endif
