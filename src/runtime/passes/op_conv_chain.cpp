// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// ConvChain (X, constants...): a run of convolutions that hand each other their output, as
// fuse_conv_chain.cpp finds it, run by kernels::ConvChain with the activations channels-last
// from one layer to the next (kernels/fast/conv_chain.h). Its attribute "program" holds the
// chain's nodes as they were: FusedConv (fp32), DynQConv (dynamic quantisation) or QLinearConv
// (static) layers, optionally followed by the spatial ReduceMean that ends the body of a
// classifier or regressor (after a per-tensor DequantizeLinear in the static chains), and for
// a static chain optionally preceded by the QuantizeLinear that quantises its input. Their
// constant inputs are the ConvChain node's inputs after X. Each layer computes what its node
// computed (the integer chains exactly); what goes is the per-node layout conversion, the
// intermediate tensors and the session's loop.

#include <cmath>
#include <unordered_map>

#include "common/qmath.h"
#include "kernels/fast/conv_chain.h"
#include "kernels/fast/thread_pool.h"
#include "runtime/ops/op_support.h"
#include "runtime/ops/quant_support.h"
#include "runtime/passes/fused_common.h"
#include "runtime/passes/passes.h"

namespace tinyq::rt::passes {

namespace {

using quant::is_8bit;

// The fused activation of a FusedConv / DynQConv layer as the chain's clamp.
void set_activation(const Node& n, int64_t opset, kernels::ChainLayerDesc* l) {
  OpContext sub{n, opset, {}};
  const Activation a = parse_activation(sub);
  l->clamp = a.on;
  l->lo = a.lo;
  l->hi = a.hi;
}

// The geometry attributes of a 2-D convolution node whose weights are `w` [M, C/group, kh, kw];
// explicit pads only (auto_pad NOTSET or VALID).
void parse_geometry(const Node& n, const Tensor& w, kernels::ChainLayerDesc* l) {
  if (w.rank() != 4) throw Error(n.label(), "weights must be 4-D");
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID") throw Error(n.label(), "auto_pad " + auto_pad + " is not handled");
  const std::vector<int64_t> ks = n.attr_ints("kernel_shape"), st = n.attr_ints("strides"),
                             di = n.attr_ints("dilations"), pads = n.attr_ints("pads");
  l->group = n.attr_int("group", 1);
  if (l->group < 1 || w.dim(0) % l->group != 0) throw Error(n.label(), "bad group");
  l->out_channels = w.dim(0);
  l->in_channels = w.dim(1) * l->group;
  for (int a = 0; a < 2; ++a) {
    l->kernel[a] = w.dim(2 + static_cast<size_t>(a));
    if (!ks.empty() && (ks.size() != 2 || ks[static_cast<size_t>(a)] != l->kernel[a]))
      throw Error(n.label(), "kernel_shape disagrees with the weights");
    if (!st.empty() && st.size() != 2) throw Error(n.label(), "strides must have 2 values");
    if (!di.empty() && di.size() != 2) throw Error(n.label(), "dilations must have 2 values");
    l->stride[a] = st.empty() ? 1 : st[static_cast<size_t>(a)];
    l->dilation[a] = di.empty() ? 1 : di[static_cast<size_t>(a)];
    if (auto_pad == "NOTSET" && !pads.empty()) {
      if (pads.size() != 4) throw Error(n.label(), "pads must have 4 values");
      l->pad_begin[a] = pads[static_cast<size_t>(a)];
      l->pad_end[a] = pads[static_cast<size_t>(a) + 2];
    }
  }
}

class ConvChainOp final : public Op {
 public:
  explicit ConvChainOp(const OpContext& ctx) {
    const FusedProgram prog = fused_program(ctx);
    const auto& consts = prog.consts;
    auto constant = [&](const Node& n, size_t i) -> const Tensor* {
      if (!n.has_input(i)) return nullptr;
      auto it = consts.find(n.inputs[i]);
      return it == consts.end() ? nullptr : it->second;
    };
    auto need = [&](const Node& n, size_t i, const char* what) -> const Tensor& {
      const Tensor* t = constant(n, i);
      if (!t) throw Error(n.label(), std::string(what) + " must be constant");
      return *t;
    };
    kernels::ChainDesc d;
    const std::vector<Node>& nodes = prog.graph->nodes;
    try {
      size_t i = 0;
      // A leading QuantizeLinear (static chains of a float input): per tensor, constant.
      if (!nodes.empty() && nodes[0].op_type == "QuantizeLinear") {
        const Node& n = nodes[0];
        const Tensor& s = need(n, 1, "y_scale");
        const Tensor& z = need(n, 2, "y_zero_point");
        if (s.dtype() != DType::F32 || s.numel() != 1 || !is_8bit(z.dtype()) || z.numel() != 1)
          throw Error(n.label(), "must quantise per tensor to 8 bits");
        d.quantize_input = true;
        d.in_scale = s.data<float>()[0];
        d.in_zero_point = z.dtype() == DType::U8 ? z.data<uint8_t>()[0] : z.data<int8_t>()[0] + 128;
        in_type_ = z.dtype();
        ++i;
      }
      for (; i < nodes.size(); ++i) {
        const Node& n = nodes[i];
        kernels::ChainLayerDesc l;
        l.x_zero_point = 0;
        w_int_.emplace_back();
        floats_.emplace_back();
        std::vector<int32_t>& wint = w_int_.back();
        std::vector<float>& fl = floats_.back();  // [bias (M) | scale (M)]
        if (is_fused(n) && n.op_type == "FusedConv") {
          if (!d.layers.empty() && d.kind != kernels::ChainKind::F32) throw Error(n.label(), "mixes chain kinds");
          d.kind = kernels::ChainKind::F32;
          if (n.inputs.size() > 3) throw Error(n.label(), "has a residual");
          const Tensor& w = need(n, 1, "W");
          if (w.dtype() != DType::F32) throw Error(n.label(), "W must be float");
          parse_geometry(n, w, &l);
          l.w_f32 = w.data<float>();
          if (n.has_input(2)) {
            fl = per_axis_values(need(n, 2, "B"), l.out_channels, "B");
            l.bias = fl.data();
          }
          set_activation(n, ctx.opset, &l);
        } else if (is_fused(n) && n.op_type == "DynQConv") {
          if (!d.layers.empty() && d.kind != kernels::ChainKind::Dynamic) throw Error(n.label(), "mixes chain kinds");
          d.kind = kernels::ChainKind::Dynamic;
          if (n.inputs.size() > 5) throw Error(n.label(), "has a residual");
          const Tensor& w = need(n, 1, "W");
          if (!is_8bit(w.dtype())) throw Error(n.label(), "W must be 8-bit");
          parse_geometry(n, w, &l);
          const int64_t m = l.out_channels;
          effective_weights(n, w, constant(n, 2), &wint);
          l.w_int = wint.data();
          fl.assign(static_cast<size_t>(2 * m), 0.0f);
          const std::vector<float> ws = per_axis_values(need(n, 3, "w_scale"), m, "w_scale");
          std::copy(ws.begin(), ws.end(), fl.begin() + m);
          l.scale = fl.data() + m;
          if (n.has_input(4)) {
            const std::vector<float> b = per_axis_values(need(n, 4, "B"), m, "B");
            std::copy(b.begin(), b.end(), fl.begin());
            l.bias = fl.data();
          }
          set_activation(n, ctx.opset, &l);
        } else if (!is_fused(n) && n.op_type == "QLinearConv") {
          if (!d.layers.empty() && d.kind != kernels::ChainKind::Static) throw Error(n.label(), "mixes chain kinds");
          d.kind = kernels::ChainKind::Static;
          const Tensor& w = need(n, 3, "w");
          if (!is_8bit(w.dtype())) throw Error(n.label(), "w must be 8-bit");
          parse_geometry(n, w, &l);
          const int64_t m = l.out_channels;
          const Tensor& sx = need(n, 1, "x_scale");
          const Tensor& zx = need(n, 2, "x_zero_point");
          const Tensor& sw = need(n, 4, "w_scale");
          const Tensor& sy = need(n, 6, "y_scale");
          const Tensor& zy = need(n, 7, "y_zero_point");
          if (!is_8bit(zx.dtype()) || zy.dtype() != zx.dtype() || zx.numel() != 1 || zy.numel() != 1)
            throw Error(n.label(), "x and y zero points must be one 8-bit value of the same type");
          if (sx.dtype() != DType::F32 || sy.dtype() != DType::F32 || sw.dtype() != DType::F32 || sx.numel() != 1 ||
              sy.numel() != 1 || (sw.numel() != 1 && sw.numel() != m))
            throw Error(n.label(), "scales must be float, x and y per tensor, w per tensor or channel");
          if (zx.dtype() == DType::I8 && w.dtype() != DType::I8) throw Error(n.label(), "int8 data needs int8 weights");
          const bool u8 = zx.dtype() == DType::U8;
          if (!d.layers.empty() && u8 != d.data_u8) throw Error(n.label(), "mixes data types");
          d.data_u8 = u8;
          effective_weights(n, w, constant(n, 5), &wint);
          l.w_int = wint.data();
          const int32_t shift = u8 ? 0 : 128;
          l.x_zero_point = (u8 ? zx.data<uint8_t>()[0] : zx.data<int8_t>()[0]) + shift;
          l.y_zero_point = (u8 ? zy.data<uint8_t>()[0] : zy.data<int8_t>()[0]) + shift;
          fl.assign(static_cast<size_t>(m), 0.0f);
          const float* psw = sw.data<float>();
          for (int64_t c = 0; c < m; ++c)
            fl[static_cast<size_t>(c)] =
                qmath::requant_multiplier(sx.data<float>()[0], psw[sw.numel() == 1 ? 0 : c], sy.data<float>()[0]);
          l.scale = fl.data();
          if (n.has_input(8)) {
            const Tensor& b = need(n, 8, "B");
            if (b.dtype() != DType::I32 || b.numel() != m) throw Error(n.label(), "B must hold one int32 per channel");
            l.bias_i32 = b.data<int32_t>();
          }
          y_zero_point_ = l.y_zero_point - shift;
        } else {
          break;  // the tail
        }
        d.layers.push_back(l);
      }
      // Tail: [DequantizeLinear (static)] ReduceMean over the two spatial axes.
      if (i < nodes.size() && nodes[i].op_type == "DequantizeLinear") {
        const Node& n = nodes[i];
        const Tensor& s = need(n, 1, "x_scale");
        const Tensor& z = need(n, 2, "x_zero_point");
        if (d.kind != kernels::ChainKind::Static || s.dtype() != DType::F32 || s.numel() != 1 || z.numel() != 1 ||
            z.dtype() != (d.data_u8 ? DType::U8 : DType::I8))
          throw Error(n.label(), "must dequantise the chain's output per tensor");
        const int32_t zp = d.data_u8 ? z.data<uint8_t>()[0] : z.data<int8_t>()[0];
        if (zp != y_zero_point_) throw Error(n.label(), "zero point differs from the chain's");
        d.mean_scale = s.data<float>()[0];
        ++i;
        if (i >= nodes.size() || nodes[i].op_type != "ReduceMean")
          throw Error(n.label(), "must be followed by ReduceMean");
      }
      if (i < nodes.size() && nodes[i].op_type == "ReduceMean") {
        const Node& n = nodes[i];
        std::vector<int64_t> axes = n.attr_ints("axes");
        if (n.has_input(1)) axes = tensor_to_int64s(need(n, 1, "axes"));
        if (axes.size() != 2) throw Error(n.label(), "must reduce the two spatial axes");
        for (int64_t& a : axes) a = a < 0 ? a + 4 : a;
        if (!((axes[0] == 2 && axes[1] == 3) || (axes[0] == 3 && axes[1] == 2)))
          throw Error(n.label(), "must reduce the two spatial axes");
        d.mean = true;
        keepdims_ = n.attr_int("keepdims", 1) != 0;
        ++i;
      }
      if (i != nodes.size()) throw Error(nodes[i].label(), "cannot be part of a convolution chain");
      if (d.layers.empty()) throw Error("the chain has no convolution");
      if (d.quantize_input && (d.kind != kernels::ChainKind::Static || in_type_ != (d.data_u8 ? DType::U8 : DType::I8)))
        throw Error("a leading QuantizeLinear must give the chain's 8-bit type");
      if (d.kind == kernels::ChainKind::Static && !d.mean && d.mean_scale != 1.0f)
        throw Error("a dequantised tail needs its mean");
    } catch (const Error& e) {
      ctx.fail(e.what());
    }
    kind_ = d.kind;
    quantize_input_ = d.quantize_input;
    data_u8_ = d.data_u8;
    mean_ = d.mean;
    chain_ = kernels::select_conv_chain(d);
    if (!chain_) ctx.fail("the chain kernels decline it: " + kernels::ConvChain::declines(d));
    w_int_.clear();  // packed by the chain
    floats_.clear();
  }

  void run(const OpInputs& in, std::vector<Tensor>& out) override {
    const Tensor& x = *in[0];
    const DType data = data_u8_ ? DType::U8 : DType::I8;  // Static: the chain's 8-bit type
    const DType want = kind_ != kernels::ChainKind::Static || quantize_input_ ? DType::F32 : data;
    if (x.dtype() != want)
      throw Error(std::string("input must be ") + dtype_name(want) + ", is " + dtype_name(x.dtype()));
    if (x.rank() != 4 || x.dim(1) != chain_->in_channels())
      throw Error("input must be [N, " + std::to_string(chain_->in_channels()) + ", H, W], is " +
                  shape_to_string(x.shape()));
    const int64_t n = x.dim(0), m = chain_->out_channels();
    int64_t oh = 0, ow = 0;
    std::string why;
    if (!chain_->out_size(x.dim(2), x.dim(3), &oh, &ow, &why)) throw Error(why);
    Shape shape = mean_ ? (keepdims_ ? Shape{n, m, 1, 1} : Shape{n, m}) : Shape{n, m, oh, ow};
    const DType y_type = mean_ ? DType::F32 : kind_ == kernels::ChainKind::Static ? data : DType::F32;
    Tensor y = Tensor::uninitialized(y_type, shape);  // the chain writes every element
    if (n > 0) chain_->run(x.raw(), n, x.dim(2), x.dim(3), y.raw(), kernels::current_threads());
    out[0] = std::move(y);
  }

  std::vector<std::pair<std::string, double>> profile_parts() const override { return chain_->profile(); }

 private:
  // w - w_zero_point as int32, [M][C/group][kh][kw]; the zero point one value or one per
  // output channel, of W's type.
  static void effective_weights(const Node& n, const Tensor& w, const Tensor* zp, std::vector<int32_t>* out) {
    const int64_t m = w.dim(0), per = w.numel() / std::max<int64_t>(1, m);
    std::vector<int32_t> z(1, 0);
    if (zp) {
      if (zp->dtype() != w.dtype() || (zp->numel() != 1 && zp->numel() != m))
        throw Error(n.label(), "the weight zero point must be W's type, 1 or M values");
      z.clear();
      for (int64_t i = 0; i < zp->numel(); ++i)
        z.push_back(zp->dtype() == DType::U8 ? zp->data<uint8_t>()[i] : zp->data<int8_t>()[i]);
    }
    out->resize(static_cast<size_t>(w.numel()));
    for (int64_t i = 0; i < w.numel(); ++i) {
      const int32_t v = w.dtype() == DType::U8 ? w.data<uint8_t>()[i] : w.data<int8_t>()[i];
      (*out)[static_cast<size_t>(i)] = v - z[z.size() == 1 ? 0 : static_cast<size_t>(i / per)];
    }
  }

  kernels::ChainKind kind_ = kernels::ChainKind::F32;
  bool data_u8_ = true, mean_ = false, keepdims_ = true, quantize_input_ = false;
  DType in_type_ = DType::Undefined;  // a leading QuantizeLinear's output type
  int32_t y_zero_point_ = 0;
  std::vector<std::vector<int32_t>> w_int_;
  std::vector<std::vector<float>> floats_;
  std::shared_ptr<const kernels::ConvChain> chain_;
};

}  // namespace

std::unique_ptr<Op> make_conv_chain(const OpContext& ctx) { return std::make_unique<ConvChainOp>(ctx); }

}  // namespace tinyq::rt::passes
