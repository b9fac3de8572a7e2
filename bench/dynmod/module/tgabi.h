// tgabi.h: the few pieces of Envoy 1.40's dynamic-module C ABI this spike
// uses, declared from reading Envoy's ABI description and checked against
// the pinned binary (nm -D, objdump). Not Envoy's header: only what the
// spike calls or must export, with our own names where C allows it.
//
// Calling convention facts this relies on (x86-64 System V):
//   - a {pointer, length} pair passed by value occupies two integer
//     registers, or 16 bytes of stack when fewer than two remain;
//   - enums are 32-bit ints; bool is one byte.
#ifndef TG_ABI_H
#define TG_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// A byte range owned by whoever passes it.
typedef struct {
  const char* ptr;
  size_t len;
} tg_buf;

// One header given to send_response.
typedef struct {
  const char* key;
  size_t key_len;
  const char* value;
  size_t value_len;
} tg_header;

// Which header map a header callback addresses.
enum { TG_REQUEST_HEADERS = 0, TG_RESPONSE_HEADERS = 2 };

// Every on_http_filter_* hook of 1.40 answers 0 for "continue".
enum { TG_CONTINUE = 0, TG_STOP_ITERATION = 1 };

// Callbacks Envoy exports (resolved by the dynamic linker at dlopen).
bool envoy_dynamic_module_callback_http_get_header(void* filter, int which, tg_buf key,
                                                   tg_buf* out, size_t index, size_t* count);
bool envoy_dynamic_module_callback_http_set_header(void* filter, int which, tg_buf key,
                                                   tg_buf value);
bool envoy_dynamic_module_callback_http_set_filter_state_bytes(void* filter, tg_buf key,
                                                               tg_buf value);
void envoy_dynamic_module_callback_http_set_dynamic_metadata_string(void* filter, tg_buf ns,
                                                                    tg_buf key, tg_buf value);
void envoy_dynamic_module_callback_http_send_response(void* filter, uint32_t status,
                                                      const tg_header* headers, size_t n,
                                                      tg_buf body, tg_buf details);

#endif
