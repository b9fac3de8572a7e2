// abi.h: the pieces of Envoy 1.40's dynamic-module C ABI this module uses,
// declared from Envoy's source/extensions/dynamic_modules/abi/abi.h and
// checked against the pinned binary (.tools/bin/envoy, 1.40.0): the hook
// names with `strings`, the callbacks with `nm -D`, and every one of them
// exercised by the smoke test (smoke/). Not Envoy's header: only what the
// module calls or must export, with our own short type names where C allows
// it (the layouts are Envoy's).
//
// x86-64 System V facts this relies on: a {pointer, length} struct passed
// by value takes two integer registers (or 16 bytes of stack); enums are
// 32-bit ints; bool is one byte.
#ifndef TG_ABI_H
#define TG_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// envoy_dynamic_module_type_{envoy,module}_buffer: a byte range owned by
// whoever passes it.
typedef struct {
  const char* ptr;
  size_t len;
} tg_buf;

// envoy_dynamic_module_type_module_http_header.
typedef struct {
  const char* key;
  size_t key_len;
  const char* value;
  size_t value_len;
} tg_header;

// envoy_dynamic_module_type_http_header_type_RequestHeader and
// _ResponseHeader.
enum { TG_REQUEST_HEADERS = 0, TG_RESPONSE_HEADERS = 2 };

// envoy_dynamic_module_type_on_http_filter_request_headers_status
// (Continue, StopIteration, ContinueAndDontEndStream,
// StopAllIterationAndBuffer: no filter, this one included, sees the body
// until the filter continues; the body is buffered meanwhile).
enum { TG_CONTINUE = 0, TG_STOP_ITERATION = 1, TG_STOP_ALL_BUFFER = 3 };

// Callbacks Envoy exports (bound by the dynamic linker at dlopen).

// get_header: the index-th value of key, and the number of values in *count.
bool envoy_dynamic_module_callback_http_get_header(void* filter_envoy_ptr, int header_type,
                                                   tg_buf key, tg_buf* result, size_t index,
                                                   size_t* count);
// set_header: replaces every value of key; value.ptr == NULL removes key.
bool envoy_dynamic_module_callback_http_set_header(void* filter_envoy_ptr, int header_type,
                                                   tg_buf key, tg_buf value);
// add_header: adds a value of key (keeping the others).
bool envoy_dynamic_module_callback_http_add_header(void* filter_envoy_ptr, int header_type,
                                                   tg_buf key, tg_buf value);
void envoy_dynamic_module_callback_http_set_dynamic_metadata_string(void* filter_envoy_ptr,
                                                                    tg_buf ns, tg_buf key,
                                                                    tg_buf value);
// set_dynamic_metadata_string_batch: sets n string values in namespace ns
// (merged into it), resolving the namespace once. Declared in 1.40's
// abi.h; its argument use checked by disassembling the pinned binary
// (n in r8, entries of 32 bytes: key then value buffers).
void envoy_dynamic_module_callback_http_set_dynamic_metadata_string_batch(void* filter_envoy_ptr,
                                                                          tg_buf ns,
                                                                          const tg_header* entries,
                                                                          size_t n);
// get_metadata_string: the string value of key in namespace ns of the
// metadata of source (TG_METADATA_DYNAMIC: the stream's dynamic metadata,
// envoy_dynamic_module_type_metadata_source_Dynamic) in *result, owned by
// Envoy and valid until the hook returns or metadata is set; false when
// the namespace or key is absent or the value is not a string.
enum { TG_METADATA_DYNAMIC = 0 };
bool envoy_dynamic_module_callback_http_get_metadata_string(void* filter_envoy_ptr, int source,
                                                            tg_buf ns, tg_buf key, tg_buf* result);
void envoy_dynamic_module_callback_http_send_response(void* filter_envoy_ptr, uint32_t status,
                                                      const tg_header* headers, size_t n,
                                                      tg_buf body, tg_buf details);
// get_most_specific_route_config: the module pointer that
// on_http_filter_per_route_config_new returned for the request's route
// (route, virtual host or route configuration level), or NULL.
const void* envoy_dynamic_module_callback_get_most_specific_route_config(void* filter_envoy_ptr);

// Metrics (envoy_dynamic_module_type_metrics_result: 0 success, 1 metric
// not found, 2 invalid labels, 3 frozen). 1.40 folds the *_vec variants
// of earlier releases into these: label names at definition, label values
// at increment (none here). Checked by disassembling the pinned binary:
// define_counter takes name in rsi/rdx, label names in rcx, their count in
// r8, the id's address in r9, and answers 3 once the config hook has
// returned (counters are defined there only); increment_counter takes the
// id in rsi, label values in rdx, their count in rcx, the value in r8, and
// answers 1 for id 0 (ids start at 1), so an id left 0 by a failed
// definition only makes its increments no-ops.
enum { TG_METRICS_SUCCESS = 0 };
int envoy_dynamic_module_callback_http_filter_config_define_counter(void* filter_config_envoy_ptr,
                                                                    tg_buf name,
                                                                    const tg_buf* label_names,
                                                                    size_t n_labels,
                                                                    size_t* counter_id);
int envoy_dynamic_module_callback_http_filter_increment_counter(void* filter_envoy_ptr, size_t id,
                                                                const tg_buf* label_values,
                                                                size_t n_labels, uint64_t value);

// The per-stream scheduler (1.40's filter.h DynamicModuleHttpFilterScheduler):
// scheduler_new, called on the stream's worker thread, returns a scheduler
// holding a weak reference to the stream's filter and its worker's
// dispatcher; scheduler_commit, callable from any thread, posts event_id to
// that dispatcher, which calls envoy_dynamic_module_on_http_filter_scheduled
// on the worker only if the filter is still alive and its module pointer not
// destroyed (DynamicModuleHttpFilter::onScheduled); scheduler_delete frees
// the scheduler (a posted event keeps its own weak reference, so deleting
// right after a commit is safe). The dispatcher is referenced, not owned: a
// commit must happen while the stream lives (its worker then does).
void* envoy_dynamic_module_callback_http_filter_scheduler_new(void* filter_envoy_ptr);
void envoy_dynamic_module_callback_http_filter_scheduler_delete(void* scheduler);
void envoy_dynamic_module_callback_http_filter_scheduler_commit(void* scheduler, uint64_t event_id);
// continue_decoding resumes a stream whose request headers hook stopped it
// (on the worker thread, e.g. from the scheduled hook).
void envoy_dynamic_module_callback_http_filter_continue_decoding(void* filter_envoy_ptr);

#endif
