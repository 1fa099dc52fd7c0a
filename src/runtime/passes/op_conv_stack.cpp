// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// ConvStack (see fused_ops.h; the pass: fuse_conv_stack.cpp).

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "runtime/passes/fused_conv_op.h"
#include "runtime/passes/passes.h"

namespace tinyq::rt::passes {

namespace {

// ConvStack (X, constants...): FusedConv layers on one image size, each reading X or earlier
// layers' outputs, run depth-first: every layer advances by a band of rows as soon as the rows
// it reads are there. A value only the next layer reads, and only as its input, lives in a
// ring of a few rows instead of a whole tensor (the 3x3 + Relu half of learned_filter's
// residual blocks: 3 MiB written and read back per block become a ring that stays in L2).
// The layers' kernels and epilogues are FusedConv's, band by band, so the outputs are those of
// the layers run one by one, bit for bit. A run whose shapes some layer cannot take in bands
// goes layer by layer.
class ConvStackOp final : public Op {
 public:
  explicit ConvStackOp(const OpContext& ctx) {
    const FusedProgram prog = fused_program(ctx);
    std::unordered_map<std::string, int> value_of{{ctx.node.input(0), 0}};  // 0: X
    int values = 1;
    for (const Node& n : prog.graph->nodes) {
      if (!is_fused(n) || n.op_type != "FusedConv") ctx.fail("cannot run " + n.label() + " in a stack");
      OpContext sub{n, ctx.opset, {}};
      for (const auto& in : n.inputs) {
        auto it = in.empty() ? prog.consts.end() : prog.consts.find(in);
        sub.constants.push_back(it == prog.consts.end() ? nullptr : it->second);
      }
      Layer l;
      l.op = std::make_unique<FusedConvOp>(sub);
      auto find = [&](const std::string& v) {
        auto it = value_of.find(v);
        if (it == value_of.end()) ctx.fail(n.label() + " reads " + v + ", neither X nor an earlier layer's output");
        return it->second;
      };
      l.x = find(n.input(0));
      l.r = l.op->has_residual() ? find(n.input(3)) : -1;
      l.y = values++;
      value_of[n.outputs[0]] = l.y;
      if (l.op->also_pre()) {
        l.pre = values++;
        value_of[n.outputs[1]] = l.pre;
      }
      layers_.push_back(std::move(l));
    }
    value_count_ = values;
    for (const auto& o : ctx.node.outputs) {
      auto it = value_of.find(o);
      if (it == value_of.end() || it->second == 0) ctx.fail("output " + o + " is no layer's");
      outputs_.push_back(it->second);
    }
    // A ring candidate: a layer's output read by the next layer alone, as its input.
    for (size_t i = 0; i + 1 < layers_.size(); ++i) {
      const int y = layers_[i].y;
      bool only_next = layers_[i + 1].x == y;
      for (size_t j = 0; j < layers_.size(); ++j)
        only_next = only_next && layers_[j].r != y && (j == i + 1 || layers_[j].x != y);
      if (only_next) layers_[i].ring_candidate = true;
    }
  }

  void run(const OpInputs& in, std::vector<Tensor>& out) override { compute(in, out, nullptr, nullptr); }
  void run_measured(const OpInputs& in, std::vector<Tensor>& out, const RunRanges& ranges) override {
    compute(in, out, ranges.out, ranges.range_only);
  }

 private:
  struct Layer {
    std::unique_ptr<FusedConvOp> op;
    int x = 0, r = -1, y = 0, pre = -1;  // value indices (-1: none)
    bool ring_candidate = false;
  };

  // Rows per band: a multiple of the Winograd tiles (2 and 4).
  static constexpr int64_t kBand = 16;

  void compute(const OpInputs& in, std::vector<Tensor>& out, kernels::FiniteRange* ranges,
               const std::vector<bool>* range_only) {
    std::vector<Tensor> v(static_cast<size_t>(value_count_));
    v[0] = nn::f32_input(in[0], "input X");
    // Which values leave the op, and which of them only for their range.
    std::vector<int> out_index(static_cast<size_t>(value_count_), -1);
    for (size_t k = 0; k < outputs_.size(); ++k) out_index[static_cast<size_t>(outputs_[k])] = static_cast<int>(k);
    auto wanted_stored = [&](int value) {
      const int k = out_index[static_cast<size_t>(value)];
      return k >= 0 && !(ranges && range_only && (*range_only)[static_cast<size_t>(k)]);
    };
    // On more threads the layers run one by one, each kernel splitting its whole output over
    // them: bands split finely enough to share cost a fork-join per band and layer, and a stripe
    // of rows per thread (rings of its own, its neighbours' halo rows computed twice) lost to
    // the kernels' dynamic split on a loaded machine (learned_filter, 2 threads: 8.7-9.3
    // against 7.9-8.8 ms).
    std::vector<kernels::ConvParams> params;
    if (kernels::current_threads() > 1 || !banded_geometry(v[0].shape(), &params)) {
      layer_by_layer(v, out, ranges);
      return;
    }
    const int64_t H = params.front().out_size[0];
    // Ring rows: a band, plus what a reader lags behind its writer (a step and its halo), plus
    // the step the writer rounds to, in whole steps.
    std::vector<int64_t> ring(static_cast<size_t>(value_count_), 0);
    for (size_t i = 0; i + 1 < layers_.size(); ++i) {
      const Layer& l = layers_[i];
      if (!l.ring_candidate || wanted_stored(l.y) || !l.op->takes_rings(params[i]) ||
          !layers_[i + 1].op->takes_rings(params[i + 1]))
        continue;
      const int64_t step = l.op->row_step(params[i]);
      const int64_t rows = (kBand + 3 * step + FusedConvOp::halo(params[i + 1]) + step - 1) / step * step;
      if (rows < H) ring[static_cast<size_t>(l.y)] = rows;
    }
    // Values that leave the op are tensors of their own; the others live in the op's arena,
    // kept from run to run (fresh 3 MiB tensors per run would cost page faults every run).
    auto out_shape = [&](size_t i, int64_t rows) {
      return Shape{params[i].batch, params[i].out_channels, rows, params[i].out_size[1]};
    };
    auto rows_of = [&](int value) { return ring[static_cast<size_t>(value)] ? ring[static_cast<size_t>(value)] : H; };
    int64_t arena_floats = 0;
    for (size_t i = 0; i < layers_.size(); ++i)
      if (!wanted_stored(layers_[i].y)) arena_floats += shape_numel(out_shape(i, rows_of(layers_[i].y))) + 16;
    std::unique_lock<std::mutex> lock(arena_mu_, std::try_to_lock);
    Tensor own;
    Tensor& held = lock.owns_lock() ? arena_ : own;  // a concurrent run gets an arena of its own
    if (held.numel() < arena_floats) held = Tensor::uninitialized(DType::F32, {arena_floats});
    float* arena = arena_floats > 0 ? held.data<float>() : nullptr;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const Layer& l = layers_[i];
      if (wanted_stored(l.y)) {
        v[static_cast<size_t>(l.y)] = Tensor::uninitialized(DType::F32, out_shape(i, H));
      } else {
        const Shape shape = out_shape(i, rows_of(l.y));
        v[static_cast<size_t>(l.y)] = Tensor::view(DType::F32, shape, arena);
        arena += shape_numel(shape) + 16;
      }
      if (l.pre >= 0 && wanted_stored(l.pre)) v[static_cast<size_t>(l.pre)] = Tensor::uninitialized(DType::F32, out_shape(i, H));
    }
    // Measured: the values that leave the op (as outputs or for their range alone).
    std::vector<kernels::FiniteRange> seen(static_cast<size_t>(value_count_));
    std::vector<kernels::FiniteRange*> measured(static_cast<size_t>(value_count_), nullptr);
    if (ranges)
      for (int value : outputs_) measured[static_cast<size_t>(value)] = &seen[static_cast<size_t>(value)];
    run_bands(params, ring, v, measured);
    for (size_t k = 0; k < outputs_.size(); ++k) {
      const size_t value = static_cast<size_t>(outputs_[k]);
      if (wanted_stored(outputs_[k])) out[k] = v[value];  // (an arena view must not leave)
      if (ranges) ranges[k] = seen[value];
    }
  }

  // The layers depth-first: each pass moves every layer on by up to a band of rows, as far as
  // the rows it reads (and, writing a ring, the rows its reader still reads) allow. measured:
  // per value, the range its writes fold into, or null.
  void run_bands(const std::vector<kernels::ConvParams>& params, const std::vector<int64_t>& ring,
                 std::vector<Tensor>& v, const std::vector<kernels::FiniteRange*>& measured) const {
    const int64_t H = params.front().out_size[0];
    // done[value]: its rows computed so far (X: all of them).
    std::vector<int64_t> done(static_cast<size_t>(value_count_), 0);
    done[0] = H;
    for (bool left = true; left;) {
      left = false;
      bool moved = false;
      for (size_t i = 0; i < layers_.size(); ++i) {
        const Layer& l = layers_[i];
        int64_t& at = done[static_cast<size_t>(l.y)];
        if (at == H) continue;
        left = true;
        int64_t limit = H;
        const int64_t xd = done[static_cast<size_t>(l.x)];
        if (xd < H) limit = std::min(limit, xd - FusedConvOp::halo(params[i]));
        if (l.r >= 0 && done[static_cast<size_t>(l.r)] < H) limit = std::min(limit, done[static_cast<size_t>(l.r)]);
        // A ring's writer stays within its ring of the rows its reader still reads.
        if (const int64_t rows = ring[static_cast<size_t>(l.y)])
          limit = std::min(limit, done[static_cast<size_t>(layers_[i + 1].y)] - params[i + 1].pad_begin[0] + rows);
        int64_t to = std::min(limit, at + kBand);
        const int64_t step = l.op->row_step(params[i]);
        if (to < H) to = to / step * step;
        if (to <= at) continue;
        Tensor* pre = l.pre >= 0 && !v[static_cast<size_t>(l.pre)].empty() ? &v[static_cast<size_t>(l.pre)] : nullptr;
        kernels::FiniteRange* pre_range = l.pre >= 0 ? measured[static_cast<size_t>(l.pre)] : nullptr;
        l.op->run_rows(params[i], v[static_cast<size_t>(l.x)], l.r >= 0 ? &v[static_cast<size_t>(l.r)] : nullptr,
                       v[static_cast<size_t>(l.y)], pre, measured[static_cast<size_t>(l.y)], pre_range, at, to,
                       kernels::RowRings{ring[static_cast<size_t>(l.x)], ring[static_cast<size_t>(l.y)]});
        at = to;
        moved = true;
      }
      // Each pass moves some layer on (the first reads X, whole; a ring holds a band and the
      // lag); a pass that cannot would repeat forever.
      if (left && !moved) throw Error("the stack's band schedule is stuck (a ring too small for its layers)");
    }
  }

  // Every layer's geometry for input shape x, when each can run in bands over one image size,
  // its residual the output's shape.
  bool banded_geometry(const Shape& x, std::vector<kernels::ConvParams>* params) const {
    std::vector<Shape> shape(static_cast<size_t>(value_count_));
    shape[0] = x;
    for (const Layer& l : layers_) {
      const Shape& in = shape[static_cast<size_t>(l.x)];
      if (in.size() != 4) return false;
      kernels::ConvParams p;
      try {
        p = l.op->params(in);
      } catch (const Error&) {
        return false;
      }
      const Shape y{p.batch, p.out_channels, p.out_size[0], p.out_size[1]};
      if (l.op->row_step(p) <= 0 || p.out_size[0] != x[2] || p.out_size[1] != x[3] || p.in_size[0] != x[2]) return false;
      if (l.r >= 0 && shape[static_cast<size_t>(l.r)] != y) return false;
      shape[static_cast<size_t>(l.y)] = y;
      if (l.pre >= 0) shape[static_cast<size_t>(l.pre)] = y;
      params->push_back(p);
    }
    return true;
  }

  // The layers one after another, each as its FusedConv node ran.
  void layer_by_layer(std::vector<Tensor>& v, std::vector<Tensor>& out, kernels::FiniteRange* ranges) {
    for (const Layer& l : layers_) {
      OpInputs li{&v[static_cast<size_t>(l.x)], nullptr, nullptr, l.r >= 0 ? &v[static_cast<size_t>(l.r)] : nullptr};
      std::vector<Tensor> lo(l.pre >= 0 ? 2 : 1);
      l.op->run(li, lo);
      v[static_cast<size_t>(l.y)] = std::move(lo[0]);
      if (l.pre >= 0) v[static_cast<size_t>(l.pre)] = std::move(lo[1]);
    }
    for (size_t k = 0; k < outputs_.size(); ++k) {
      out[k] = v[static_cast<size_t>(outputs_[k])];
      if (ranges) ranges[k].fold(out[k].data<float>(), out[k].numel());
    }
  }

  std::vector<Layer> layers_;
  std::vector<int> outputs_;  // value index of each output
  int value_count_ = 0;
  std::mutex arena_mu_;
  Tensor arena_;  // a tensor: 2 MiB and up, on huge pages
};

}  // namespace

std::unique_ptr<Op> make_conv_stack(const OpContext& ctx) { return std::make_unique<ConvStackOp>(ctx); }

}  // namespace tinyq::rt::passes
