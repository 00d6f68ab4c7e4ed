// Prototypes of the ggml functions EvoMerge calls, matching the ggml compiled by
// github.com/ollama/ollama@v0.17.4 (ml/backend/ggml/ggml). The ggml headers live in the module cache,
// not in this tree, so the few declarations we need are repeated here. Pin that module version: these must
// match it.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ggml_context;
struct ggml_cgraph;
struct ggml_backend;
struct ggml_backend_buffer;
struct ggml_backend_buffer_type;
struct ggml_backend_sched;
struct ggml_backend_reg;
struct ggml_backend_device;
typedef struct ggml_backend *ggml_backend_t;
typedef struct ggml_backend_buffer *ggml_backend_buffer_t;
typedef struct ggml_backend_buffer_type *ggml_backend_buffer_type_t;
typedef struct ggml_backend_sched *ggml_backend_sched_t;
typedef struct ggml_backend_reg *ggml_backend_reg_t;
typedef struct ggml_backend_device *ggml_backend_dev_t;

// struct ggml_tensor of the pinned version (include/ggml.h:649, 336 bytes). The graph rewrite in ops_train.go
// reads and sets op and src; everything else only reads the leading fields.
struct ggml_tensor {
	int type;
	struct ggml_backend_buffer *buffer;
	int64_t ne[4];
	size_t nb[4];
	int op;
	int32_t op_params[16];
	int32_t flags;
	struct ggml_tensor *src[10];
	struct ggml_tensor *view_src;
	size_t view_offs;
	void *data;
	char name[64];
	void *extra;
	char padding[8];
};

struct ggml_init_params {
	size_t mem_size;
	void *mem_buffer;
	bool no_alloc;
};

typedef void (*ggml_to_float_t)(const void *x, float *y, int64_t k);
struct ggml_type_traits {
	const char *type_name;
	int64_t blck_size;
	int64_t blck_size_interleave;
	size_t type_size;
	bool is_quantized;
	ggml_to_float_t to_float;
	void *from_float_ref;
};

struct ggml_context *ggml_init(struct ggml_init_params params);
void ggml_free(struct ggml_context *ctx);
size_t ggml_tensor_overhead(void);
size_t ggml_graph_overhead_custom(size_t size, bool grads);
const struct ggml_type_traits *ggml_get_type_traits(int type);
int64_t ggml_blck_size(int type);
size_t ggml_type_size(int type);
size_t ggml_row_size(int type, int64_t ne);
size_t ggml_nbytes(const struct ggml_tensor *t);
size_t ggml_quantize_chunk(int type, const float *src, void *dst, int64_t start, int64_t nrows, int64_t n_per_row, const float *imatrix);
void ggml_fp32_to_fp16_row(const float *x, uint16_t *y, int64_t n);
void ggml_fp32_to_bf16_row(const float *x, uint16_t *y, int64_t n);

struct ggml_tensor *ggml_new_tensor_1d(struct ggml_context *ctx, int type, int64_t ne0);
struct ggml_tensor *ggml_new_tensor_2d(struct ggml_context *ctx, int type, int64_t ne0, int64_t ne1);
struct ggml_tensor *ggml_new_tensor_3d(struct ggml_context *ctx, int type, int64_t ne0, int64_t ne1, int64_t ne2);
struct ggml_tensor *ggml_dup_tensor(struct ggml_context *ctx, const struct ggml_tensor *src);
struct ggml_tensor *ggml_set_name(struct ggml_tensor *t, const char *name);
void ggml_set_param(struct ggml_tensor *t);
void ggml_set_loss(struct ggml_tensor *t);
void ggml_set_input(struct ggml_tensor *t);
void ggml_set_output(struct ggml_tensor *t);

struct ggml_tensor *ggml_add(struct ggml_context *ctx, struct ggml_tensor *a, struct ggml_tensor *b);
struct ggml_tensor *ggml_mul(struct ggml_context *ctx, struct ggml_tensor *a, struct ggml_tensor *b);
struct ggml_tensor *ggml_scale(struct ggml_context *ctx, struct ggml_tensor *a, float s);
struct ggml_tensor *ggml_rms_norm(struct ggml_context *ctx, struct ggml_tensor *a, float eps);
struct ggml_tensor *ggml_mul_mat(struct ggml_context *ctx, struct ggml_tensor *a, struct ggml_tensor *b);
struct ggml_tensor *ggml_get_rows(struct ggml_context *ctx, struct ggml_tensor *a, struct ggml_tensor *b);
struct ggml_tensor *ggml_rope_ext(struct ggml_context *ctx, struct ggml_tensor *a, struct ggml_tensor *b, struct ggml_tensor *c,
	int n_dims, int mode, int n_ctx_orig, float freq_base, float freq_scale, float ext_factor, float attn_factor,
	float beta_fast, float beta_slow);
struct ggml_tensor *ggml_silu(struct ggml_context *ctx, struct ggml_tensor *a);
struct ggml_tensor *ggml_soft_max_ext(struct ggml_context *ctx, struct ggml_tensor *a, struct ggml_tensor *mask, float scale, float max_bias);
struct ggml_tensor *ggml_cross_entropy_loss(struct ggml_context *ctx, struct ggml_tensor *logits, struct ggml_tensor *labels);
struct ggml_tensor *ggml_cpy(struct ggml_context *ctx, struct ggml_tensor *a, struct ggml_tensor *b);
struct ggml_tensor *ggml_cont(struct ggml_context *ctx, struct ggml_tensor *a);
struct ggml_tensor *ggml_cast(struct ggml_context *ctx, struct ggml_tensor *a, int type);
bool ggml_is_contiguous(const struct ggml_tensor *t);
bool ggml_is_quantized(int type);
struct ggml_tensor *ggml_graph_get_grad_acc(const struct ggml_cgraph *cgraph, const struct ggml_tensor *node);
struct ggml_tensor *ggml_reshape_2d(struct ggml_context *ctx, struct ggml_tensor *a, int64_t ne0, int64_t ne1);
struct ggml_tensor *ggml_reshape_3d(struct ggml_context *ctx, struct ggml_tensor *a, int64_t ne0, int64_t ne1, int64_t ne2);
struct ggml_tensor *ggml_view_2d(struct ggml_context *ctx, struct ggml_tensor *a, int64_t ne0, int64_t ne1, size_t nb1, size_t offset);
struct ggml_tensor *ggml_view_3d(struct ggml_context *ctx, struct ggml_tensor *a, int64_t ne0, int64_t ne1, int64_t ne2, size_t nb1, size_t nb2, size_t offset);
struct ggml_tensor *ggml_permute(struct ggml_context *ctx, struct ggml_tensor *a, int axis0, int axis1, int axis2, int axis3);
struct ggml_tensor *ggml_transpose(struct ggml_context *ctx, struct ggml_tensor *a);
struct ggml_tensor *ggml_sum(struct ggml_context *ctx, struct ggml_tensor *a);
struct ggml_tensor *ggml_opt_step_adamw(struct ggml_context *ctx, struct ggml_tensor *a, struct ggml_tensor *grad,
	struct ggml_tensor *m, struct ggml_tensor *v, struct ggml_tensor *adamw_params);

struct ggml_cgraph *ggml_new_graph_custom(struct ggml_context *ctx, size_t size, bool grads);
void ggml_build_forward_expand(struct ggml_cgraph *g, struct ggml_tensor *t);
void ggml_build_backward_expand(struct ggml_context *ctx, struct ggml_cgraph *g, struct ggml_tensor **grad_accs);
struct ggml_tensor *ggml_graph_get_grad(const struct ggml_cgraph *g, const struct ggml_tensor *node);
void ggml_graph_reset(struct ggml_cgraph *g);
int ggml_graph_n_nodes(struct ggml_cgraph *g);
struct ggml_tensor *ggml_graph_node(struct ggml_cgraph *g, int i);

ggml_backend_t ggml_backend_cpu_init(void);
void ggml_backend_cpu_set_n_threads(ggml_backend_t b, int n);
const char *ggml_backend_name(ggml_backend_t b);
void ggml_backend_free(ggml_backend_t b);
ggml_backend_buffer_t ggml_backend_alloc_ctx_tensors(struct ggml_context *ctx, ggml_backend_t b);
void ggml_backend_buffer_free(ggml_backend_buffer_t buf);
void *ggml_backend_buffer_get_base(ggml_backend_buffer_t buf);
size_t ggml_backend_buffer_get_size(ggml_backend_buffer_t buf);
bool ggml_backend_buffer_is_host(ggml_backend_buffer_t buf);
void ggml_backend_tensor_set(struct ggml_tensor *t, const void *data, size_t offset, size_t size);
void ggml_backend_tensor_get(const struct ggml_tensor *t, void *data, size_t offset, size_t size);
int ggml_backend_tensor_alloc(struct ggml_backend_buffer *buffer, struct ggml_tensor *t, void *addr);
void ggml_backend_tensor_memset(struct ggml_tensor *t, uint8_t value, size_t offset, size_t size);
ggml_backend_sched_t ggml_backend_sched_new(ggml_backend_t *backends, ggml_backend_buffer_type_t *bufts, int n, size_t graph_size, bool parallel, bool op_offload);
void ggml_backend_sched_free(ggml_backend_sched_t s);
bool ggml_backend_sched_alloc_graph(ggml_backend_sched_t s, struct ggml_cgraph *g);
int ggml_backend_sched_graph_compute(ggml_backend_sched_t s, struct ggml_cgraph *g);
void ggml_backend_sched_reset(ggml_backend_sched_t s);
ggml_backend_reg_t ggml_backend_load(const char *path);
ggml_backend_dev_t ggml_backend_dev_by_type(int type);
ggml_backend_t ggml_backend_dev_init(ggml_backend_dev_t dev, const char *params);
const char *ggml_backend_dev_description(ggml_backend_dev_t dev);

// Calls a type's to_float through its function pointer (cgo cannot call C function pointers).
static inline void ggml_convert_to_float(ggml_to_float_t f, const void *x, float *y, int64_t k) { f(x, y, k); }
struct ggml_tensor *ggml_reshape_4d(struct ggml_context *ctx, struct ggml_tensor *a, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3);
struct ggml_tensor *ggml_sqr(struct ggml_context *ctx, struct ggml_tensor *a);
typedef void (*ggml_custom2_op_t)(struct ggml_tensor *dst, const struct ggml_tensor *a, const struct ggml_tensor *b, int ith, int nth, void *userdata);
struct ggml_tensor *ggml_map_custom2(struct ggml_context *ctx, struct ggml_tensor *a, struct ggml_tensor *b, ggml_custom2_op_t fun, int n_tasks, void *userdata);
struct ggml_tensor *ggml_out_prod(struct ggml_context *ctx, struct ggml_tensor *a, struct ggml_tensor *b);
typedef void (*ggml_custom_op_t)(struct ggml_tensor *dst, int ith, int nth, void *userdata);
struct ggml_tensor *ggml_custom_4d(struct ggml_context *ctx, int type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3,
	struct ggml_tensor **args, int n_args, ggml_custom_op_t fun, int n_tasks, void *userdata);
