/* server/base/quantity.h: Kubernetes resource quantities ("500m", "1.5Gi", "1e3", 2) read
 * from strings and JSON, and turned into whole base units (millicores, bytes). */
#ifndef PV_QUANTITY_H
#define PV_QUANTITY_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Parses 's' (borrowed) in the syntax of Kubernetes' resource.Quantity: an optional sign
 * ('+' or '-'), digits with an optional fraction ("1", "1.5", "1.", ".5"), then one
 * suffix: binary Ki Mi Gi Ti Pi Ei (powers of 1024), decimal n u m k M G T P E or none
 * (powers of 1000), or a decimal exponent e/E with an optional sign and digits ("1e3",
 * "5E-2"). Nothing else: no spaces, no other suffix ("1KB", "10 Gi"), at least one digit
 * ("", "Gi", "." are refused), at most 64 characters, exponents within +-400. On success
 * sets *out to the value in base units (the suffix applied: "500m" is 0.5, "1Ki" 1024) and
 * returns true; a value too large for a double is refused. Otherwise returns false and
 * leaves *out alone. A negative quantity parses; callers that need amounts refuse it.
 * Thread-safe. */
bool quantity_parse(const char *s, double *out);

/* As quantity_parse() for a JSON string 'v' (borrowed); a JSON number is taken as it is.
 * Returns false, leaving *out alone, for other types, an invalid string, or a number that
 * is infinite or NaN. */
bool quantity_json(const cJSON *v, double *out);

/* Sets *out to 'v' x 'scale' rounded up to a whole number, the way Kubernetes rounds a
 * quantity to its unit (0.0001 cpu is 1 millicore): a product within a few units in the
 * last place of a whole number is that number, so "2.007" x 1000 is 2007, not 2008. Returns
 * false, leaving *out alone, when 'v' is negative or NaN or the result does not fit in
 * an int64_t. 'scale' is 1000 for millicores from cores, 1 for bytes. */
bool quantity_ceil(double v, double scale, int64_t *out);

#endif
