// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// ONNX protobuf <-> tinyq IR. The only translation unit that sees ONNX's generated classes.

#include <google/protobuf/arena.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <map>
#include <sstream>

#include "common/file_util.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"

namespace tinyq {
namespace {

struct Loader {
  std::string name;      // file named in errors
  std::string base_dir;  // external data is resolved here
  LoadLimits limits;
  uint64_t tensor_bytes = 0;
  uint64_t nodes = 0;
  std::vector<ExternalDataRef> external;
  std::map<std::string, std::string> external_files;  // location -> bytes

  [[noreturn]] void fail(const std::string& what) const { throw Error(name, what); }

  void count_bytes(uint64_t n, const std::string& tensor) {
    tensor_bytes += n;
    if (tensor_bytes > limits.max_total_tensor_bytes)
      fail("tensor '" + tensor + "' takes tensor data past the limit of " +
           std::to_string(limits.max_total_tensor_bytes) + " bytes");
  }

  const std::string& external_file(const std::string& location, const std::string& tensor) {
    auto it = external_files.find(location);
    if (it != external_files.end()) return it->second;
    if (!path_stays_inside(location))
      fail("tensor '" + tensor + "': external data location '" + location +
           "' is absolute or escapes the model's folder");
    std::string path = path_join(base_dir, location);
    if (!file_exists(path))
      fail("tensor '" + tensor + "': external data file '" + path + "' does not exist");
    std::string bytes = read_file_bounded(path, limits.max_total_tensor_bytes);
    return external_files.emplace(location, std::move(bytes)).first->second;
  }

  Tensor tensor(const onnx::TensorProto& tp) {
    const std::string& tname = tp.name();
    DType dtype = static_cast<DType>(tp.data_type());
    if (!dtype_is_numeric(dtype))
      fail("tensor '" + tname + "' has unsupported data type " + std::to_string(tp.data_type()));
    if (tp.has_segment()) fail("tensor '" + tname + "' is segmented, which is not supported");
    Shape shape(tp.dims().begin(), tp.dims().end());
    int64_t numel = 0;
    try {
      numel = shape_numel(shape);
    } catch (const Error& e) {
      fail("tensor '" + tname + "': " + e.what());
    }
    uint64_t esize = dtype_size(dtype);
    if (static_cast<uint64_t>(numel) > limits.max_total_tensor_bytes / esize)
      fail("tensor '" + tname + "' declares " + shape_to_string(shape) + " elements, over the limit");
    uint64_t nbytes = static_cast<uint64_t>(numel) * esize;
    count_bytes(nbytes, tname);

    if (tp.data_location() == onnx::TensorProto::EXTERNAL) return external_tensor(tp, dtype, shape, nbytes);
    Tensor t(dtype, shape);
    if (tp.has_raw_data()) {
      if (tp.raw_data().size() != nbytes)
        fail("tensor '" + tname + "' has " + std::to_string(tp.raw_data().size()) +
             " bytes of raw data, its shape " + shape_to_string(shape) + " needs " +
             std::to_string(nbytes));
      if (nbytes) std::memcpy(t.raw(), tp.raw_data().data(), nbytes);
      return t;
    }
    typed_fields(tp, t);
    return t;
  }

  Tensor external_tensor(const onnx::TensorProto& tp, DType dtype, const Shape& shape, uint64_t nbytes) {
    const std::string& tname = tp.name();
    std::string location;
    uint64_t offset = 0, length = 0;
    bool has_length = false;
    for (const auto& kv : tp.external_data()) {
      try {
        if (kv.key() == "location") location = kv.value();
        else if (kv.key() == "offset") offset = std::stoull(kv.value());
        else if (kv.key() == "length") { length = std::stoull(kv.value()); has_length = true; }
      } catch (const std::exception&) {
        fail("tensor '" + tname + "': external data " + kv.key() + " '" + kv.value() + "' is not a number");
      }
    }
    if (location.empty()) fail("tensor '" + tname + "': external data has no location");
    if (!has_length) length = nbytes;
    if (length != nbytes)
      fail("tensor '" + tname + "': external data length " + std::to_string(length) +
           " disagrees with its shape " + shape_to_string(shape) + " (" + std::to_string(nbytes) + " bytes)");
    const std::string& bytes = external_file(location, tname);
    if (offset > bytes.size() || length > bytes.size() - offset)
      fail("tensor '" + tname + "': external data range [" + std::to_string(offset) + ", " +
           std::to_string(offset + length) + ") runs past the end of '" + location + "' (" +
           std::to_string(bytes.size()) + " bytes)");
    Tensor t(dtype, shape);
    if (nbytes) std::memcpy(t.raw(), bytes.data() + offset, nbytes);
    external.push_back({tname, location, offset, length});
    return t;
  }

  // Values stored in TensorProto's typed repeated fields (not raw_data).
  void typed_fields(const onnx::TensorProto& tp, Tensor& t) {
    const std::string& tname = tp.name();
    auto check_count = [&](int have) {
      if (static_cast<int64_t>(have) != t.numel())
        fail("tensor '" + tname + "' holds " + std::to_string(have) + " values, its shape " +
             shape_to_string(t.shape()) + " needs " + std::to_string(t.numel()));
    };
    switch (t.dtype()) {
      case DType::F32:
        check_count(tp.float_data_size());
        std::copy(tp.float_data().begin(), tp.float_data().end(), t.data<float>());
        break;
      case DType::F64:
        check_count(tp.double_data_size());
        std::copy(tp.double_data().begin(), tp.double_data().end(), t.data<double>());
        break;
      case DType::I64:
        check_count(tp.int64_data_size());
        std::copy(tp.int64_data().begin(), tp.int64_data().end(), t.data<int64_t>());
        break;
      case DType::U32: case DType::U64: {
        check_count(tp.uint64_data_size());
        for (int i = 0; i < tp.uint64_data_size(); ++i) {
          if (t.dtype() == DType::U32) static_cast<uint32_t*>(t.raw())[i] = static_cast<uint32_t>(tp.uint64_data(i));
          else static_cast<uint64_t*>(t.raw())[i] = tp.uint64_data(i);
        }
        break;
      }
      default: {
        // int32_data carries int32 and every narrower type (int8/uint8/int16/uint16/bool, and
        // float16/bfloat16 as their bit patterns).
        check_count(tp.int32_data_size());
        size_t es = dtype_size(t.dtype());
        auto* dst = static_cast<uint8_t*>(t.raw());
        for (int i = 0; i < tp.int32_data_size(); ++i) {
          int32_t v = tp.int32_data(i);
          if (es == 4) std::memcpy(dst + 4 * i, &v, 4);
          else if (es == 2) { uint16_t h = static_cast<uint16_t>(v); std::memcpy(dst + 2 * i, &h, 2); }
          else dst[i] = static_cast<uint8_t>(v);
        }
      }
    }
  }

  ValueInfo value_info(const onnx::ValueInfoProto& vp) {
    ValueInfo v;
    v.name = vp.name();
    v.doc = vp.doc_string();
    if (!vp.has_type()) return v;
    if (!vp.type().has_tensor_type())
      fail("value '" + vp.name() + "' is not a tensor; sequences, maps and optionals are not supported");
    const auto& tt = vp.type().tensor_type();
    v.dtype = static_cast<DType>(tt.elem_type());
    if (tt.has_shape()) {
      v.has_shape = true;
      for (const auto& d : tt.shape().dim()) {
        Dim dim;
        if (d.has_dim_value()) dim.value = d.dim_value();
        else if (d.has_dim_param()) dim.param = d.dim_param();
        v.dims.push_back(dim);
      }
    }
    return v;
  }

  Attribute attribute(const onnx::AttributeProto& ap, const std::string& node_label) {
    Attribute a;
    a.name = ap.name();
    a.doc = ap.doc_string();
    if (!ap.ref_attr_name().empty())
      fail(node_label + ": attribute '" + ap.name() + "' refers to a function attribute, which is not supported");
    using AP = onnx::AttributeProto;
    switch (ap.type()) {
      case AP::FLOAT: a.kind = Attribute::Kind::Float; a.f = ap.f(); break;
      case AP::INT: a.kind = Attribute::Kind::Int; a.i = ap.i(); break;
      case AP::STRING: a.kind = Attribute::Kind::String; a.s = ap.s(); break;
      case AP::TENSOR: a.kind = Attribute::Kind::Tensor; a.t = tensor(ap.t()); break;
      case AP::GRAPH:
        a.kind = Attribute::Kind::Graph;
        a.g = std::make_shared<Graph>(graph(ap.g()));
        break;
      case AP::FLOATS:
        a.kind = Attribute::Kind::Floats;
        a.floats.assign(ap.floats().begin(), ap.floats().end());
        break;
      case AP::INTS:
        a.kind = Attribute::Kind::Ints;
        a.ints.assign(ap.ints().begin(), ap.ints().end());
        break;
      case AP::STRINGS:
        a.kind = Attribute::Kind::Strings;
        a.strings.assign(ap.strings().begin(), ap.strings().end());
        break;
      case AP::TENSORS:
        a.kind = Attribute::Kind::Tensors;
        for (const auto& t : ap.tensors()) a.tensors.push_back(tensor(t));
        break;
      case AP::GRAPHS:
        a.kind = Attribute::Kind::Graphs;
        for (const auto& g : ap.graphs()) a.graphs.push_back(std::make_shared<Graph>(graph(g)));
        break;
      default:
        fail(node_label + ": attribute '" + ap.name() + "' has unsupported type " + std::to_string(ap.type()));
    }
    return a;
  }

  Graph graph(const onnx::GraphProto& gp) {
    Graph g;
    g.name = gp.name();
    g.doc = gp.doc_string();
    if (gp.sparse_initializer_size() > 0) fail("sparse initializers are not supported");
    for (const auto& tp : gp.initializer()) {
      if (tp.name().empty()) fail("an initializer has no name");
      g.initializers.push_back(Initializer{tp.name(), tensor(tp), tp.doc_string()});
    }
    for (const auto& v : gp.input()) g.inputs.push_back(value_info(v));
    for (const auto& v : gp.output()) g.outputs.push_back(value_info(v));
    for (const auto& v : gp.value_info()) g.value_info.push_back(value_info(v));
    for (const auto& np : gp.node()) {
      if (++nodes > limits.max_nodes)
        fail("more than " + std::to_string(limits.max_nodes) + " nodes");
      Node n;
      n.name = np.name();
      n.op_type = np.op_type();
      n.domain = np.domain();
      n.doc = np.doc_string();
      n.inputs.assign(np.input().begin(), np.input().end());
      n.outputs.assign(np.output().begin(), np.output().end());
      if (n.op_type.empty()) fail("a node has no op_type");
      for (const auto& ap : np.attribute()) n.attributes.push_back(attribute(ap, n.label()));
      g.nodes.push_back(std::move(n));
    }
    return g;
  }
};

// --- IR -> protobuf -------------------------------------------------------------------------

void write_tensor(const Tensor& t, const std::string& name, const std::string& doc, onnx::TensorProto* tp) {
  tp->set_name(name);
  if (!doc.empty()) tp->set_doc_string(doc);
  tp->set_data_type(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.shape()) tp->add_dims(d);
  tp->set_raw_data(static_cast<const char*>(t.raw()), t.nbytes());
}

void write_value_info(const ValueInfo& v, onnx::ValueInfoProto* vp) {
  vp->set_name(v.name);
  if (!v.doc.empty()) vp->set_doc_string(v.doc);
  if (v.dtype == DType::Undefined && !v.has_shape) return;
  auto* tt = vp->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(v.dtype));
  if (!v.has_shape) return;
  auto* shape = tt->mutable_shape();
  for (const Dim& d : v.dims) {
    auto* dp = shape->add_dim();
    if (d.known()) dp->set_dim_value(d.value);
    else if (!d.param.empty()) dp->set_dim_param(d.param);
  }
}

void write_graph(const Graph& g, onnx::GraphProto* gp);

void write_attribute(const Attribute& a, onnx::AttributeProto* ap) {
  using AP = onnx::AttributeProto;
  ap->set_name(a.name);
  if (!a.doc.empty()) ap->set_doc_string(a.doc);
  switch (a.kind) {
    case Attribute::Kind::Float: ap->set_type(AP::FLOAT); ap->set_f(a.f); break;
    case Attribute::Kind::Int: ap->set_type(AP::INT); ap->set_i(a.i); break;
    case Attribute::Kind::String: ap->set_type(AP::STRING); ap->set_s(a.s); break;
    case Attribute::Kind::Tensor: ap->set_type(AP::TENSOR); write_tensor(a.t, "", "", ap->mutable_t()); break;
    case Attribute::Kind::Graph: ap->set_type(AP::GRAPH); write_graph(*a.g, ap->mutable_g()); break;
    case Attribute::Kind::Floats:
      ap->set_type(AP::FLOATS);
      for (float f : a.floats) ap->add_floats(f);
      break;
    case Attribute::Kind::Ints:
      ap->set_type(AP::INTS);
      for (int64_t i : a.ints) ap->add_ints(i);
      break;
    case Attribute::Kind::Strings:
      ap->set_type(AP::STRINGS);
      for (const auto& s : a.strings) ap->add_strings(s);
      break;
    case Attribute::Kind::Tensors:
      ap->set_type(AP::TENSORS);
      for (const auto& t : a.tensors) write_tensor(t, "", "", ap->add_tensors());
      break;
    case Attribute::Kind::Graphs:
      ap->set_type(AP::GRAPHS);
      for (const auto& g : a.graphs) write_graph(*g, ap->add_graphs());
      break;
    default: throw Error("attribute '" + a.name + "' has no value");
  }
}

void write_graph(const Graph& g, onnx::GraphProto* gp) {
  gp->set_name(g.name);
  if (!g.doc.empty()) gp->set_doc_string(g.doc);
  for (const auto& n : g.nodes) {
    auto* np = gp->add_node();
    if (!n.name.empty()) np->set_name(n.name);
    np->set_op_type(n.op_type);
    if (!n.domain.empty()) np->set_domain(n.domain);
    if (!n.doc.empty()) np->set_doc_string(n.doc);
    for (const auto& s : n.inputs) np->add_input(s);
    for (const auto& s : n.outputs) np->add_output(s);
    for (const auto& a : n.attributes) write_attribute(a, np->add_attribute());
  }
  for (const auto& i : g.initializers) write_tensor(i.tensor, i.name, i.doc, gp->add_initializer());
  for (const auto& v : g.inputs) write_value_info(v, gp->add_input());
  for (const auto& v : g.outputs) write_value_info(v, gp->add_output());
  for (const auto& v : g.value_info) write_value_info(v, gp->add_value_info());
}

}  // namespace

LoadedModel parse_model(const std::string& bytes, const std::string& name_for_errors,
                        const std::string& base_dir, const LoadLimits& limits) {
  Loader loader{name_for_errors, base_dir, limits, 0, 0, {}, {}};
  if (bytes.empty()) loader.fail("not a valid ONNX model (the file is empty)");
  // On an arena: protobuf is not exception-safe (an element allocated before the array holding
  // it grows is lost when the growth throws), and an arena frees every block whatever happened.
  google::protobuf::Arena arena;
  onnx::ModelProto& mp = *google::protobuf::Arena::CreateMessage<onnx::ModelProto>(&arena);
  if (!mp.ParseFromString(bytes))
    loader.fail("not a valid ONNX model (protobuf parsing failed: truncated or not an ONNX file)");
  if (!mp.has_graph() || mp.ir_version() <= 0)
    loader.fail("not a valid ONNX model (no graph or no IR version)");
  if (mp.functions_size() > 0) loader.fail("model-local functions are not supported");
  LoadedModel out;
  Model& m = out.model;
  m.ir_version = mp.ir_version();
  m.producer_name = mp.producer_name();
  m.producer_version = mp.producer_version();
  m.domain = mp.domain();
  m.model_version = mp.model_version();
  m.doc = mp.doc_string();
  for (const auto& o : mp.opset_import()) m.opset_imports.push_back({o.domain(), o.version()});
  for (const auto& kv : mp.metadata_props()) m.metadata.emplace_back(kv.key(), kv.value());
  m.graph = loader.graph(mp.graph());
  out.external_data = std::move(loader.external);
  return out;
}

LoadedModel load_model_file(const std::string& path, const LoadLimits& limits) {
  std::string bytes = read_file_bounded(path, limits.max_file_bytes);
  return parse_model(bytes, path, path_dirname(path), limits);
}

Model load_model(const std::string& path, const LoadLimits& limits) {
  return load_model_file(path, limits).model;
}

std::string serialize_model(const Model& m) {
  google::protobuf::Arena arena;  // as in parse_model
  onnx::ModelProto& mp = *google::protobuf::Arena::CreateMessage<onnx::ModelProto>(&arena);
  mp.set_ir_version(m.ir_version);
  if (!m.producer_name.empty()) mp.set_producer_name(m.producer_name);
  if (!m.producer_version.empty()) mp.set_producer_version(m.producer_version);
  if (!m.domain.empty()) mp.set_domain(m.domain);
  if (m.model_version) mp.set_model_version(m.model_version);
  if (!m.doc.empty()) mp.set_doc_string(m.doc);
  for (const auto& o : m.opset_imports) {
    auto* op = mp.add_opset_import();
    op->set_domain(o.domain);
    op->set_version(o.version);
  }
  for (const auto& kv : m.metadata) {
    auto* p = mp.add_metadata_props();
    p->set_key(kv.first);
    p->set_value(kv.second);
  }
  write_graph(m.graph, mp.mutable_graph());
  std::string out;
  if (!mp.SerializeToString(&out)) throw Error("model is too large to serialize");
  return out;
}

uint64_t save_model(const Model& model, const std::string& path) {
  const std::string bytes = serialize_model(model);
  write_file_atomic(path, bytes);
  return bytes.size();
}

}  // namespace tinyq
