/* lua/api.h: the C half of the `paved` module (PCRE2 regular expressions and the
 * JSON null sentinel). lua/paved.lua is the Lua half. */
#ifndef PV_API_H
#define PV_API_H

#include <lua.h>

/* Registry key of the light userdata pointing at the vm's struct vm_host. */
#define API_HOST_KEY "paved.host"

/* Pushes the table of C helpers that lua/paved.lua reads as `__paved_c`.
 * [-0, +1, e] */
void api_push(lua_State *L);

#endif
