// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "tinyq/tensor.h"

#include <sys/mman.h>  // madvise: huge pages for large buffers

#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>

#include "tinyq/error.h"

namespace tinyq {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: case DType::I32: case DType::U32: return 4;
    case DType::U8: case DType::I8: case DType::Bool: return 1;
    case DType::U16: case DType::I16: case DType::F16: case DType::BF16: return 2;
    case DType::I64: case DType::F64: case DType::U64: return 8;
    default: return 0;
  }
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "float";
    case DType::U8: return "uint8";
    case DType::I8: return "int8";
    case DType::U16: return "uint16";
    case DType::I16: return "int16";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
    case DType::String: return "string";
    case DType::Bool: return "bool";
    case DType::F16: return "float16";
    case DType::F64: return "double";
    case DType::U32: return "uint32";
    case DType::U64: return "uint64";
    case DType::BF16: return "bfloat16";
    default: return "undefined";
  }
}

bool dtype_is_numeric(DType dtype) { return dtype_size(dtype) != 0; }

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("shape " + shape_to_string(shape) + " has a negative dimension");
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw Error("shape " + shape_to_string(shape) + " is too large");
    n *= d;
  }
  return n;
}

std::string shape_to_string(const Shape& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? "," : "") << shape[i];
  os << ']';
  return os.str();
}

namespace {
// 64-byte alignment suits every SIMD width tinyq uses; one extra element of slack lets
// kernels read a partial vector past the end without faulting.
// `zero`: fill the elements with 0; the slack past them is zeroed either way, so reads past the
// end see defined values.
// Large buffers (an image model's activations: 3 MiB for a float [1, 16, 224, 224]) are kept
// on a short per-thread list when freed and handed out again for the same size. Left to
// malloc they fragmented the heap (small blocks allocated between them pin the freed chunks),
// so every inference touched fresh pages: learned_filter_v1's 64-sample calibration on two
// workers grew to 190 MB with 43k page faults and a tenth of its time in the kernel. A
// recycled buffer is also still warm in cache.
// Small buffers (up to 4 KiB: a tiny MLP's rows and outputs) are recycled on a list of their
// own: malloc's aligned path and its free cost vmaf_tiny_v4's int8 inference about a tenth of
// its 0.85 us.
class BufferCache {
 public:
  static constexpr size_t kMinBytes = size_t{256} << 10;
  static constexpr size_t kSmallMaxBytes = size_t{4} << 10;
  static constexpr size_t kMaxHeld = size_t{32} << 20;  // per thread and list
  static constexpr int kSlots = 8;

  ~BufferCache() {
    dead() = true;
    for (int i = 0; i < count_; ++i) std::free(ptr_[i]);
  }
  // The thread's list for buffers of `bytes` (null when they are not recycled), or null while
  // the thread is being torn down.
  static BufferCache* get(size_t bytes) {
    if (dead() || (bytes > kSmallMaxBytes && bytes < kMinBytes)) return nullptr;
    thread_local BufferCache lists[2];
    return &lists[bytes >= kMinBytes ? 1 : 0];
  }
  void* take(size_t bytes) {
    for (int i = count_ - 1; i >= 0; --i) {  // newest first: the warmest in cache
      if (size_[i] != bytes) continue;
      void* p = ptr_[i];
      for (int j = i; j + 1 < count_; ++j) {
        ptr_[j] = ptr_[j + 1];
        size_[j] = size_[j + 1];
      }
      --count_;
      held_ -= bytes;
      return p;
    }
    return nullptr;
  }
  bool give(void* p, size_t bytes) {
    if (count_ == kSlots || held_ + bytes > kMaxHeld) return false;
    ptr_[count_] = p;
    size_[count_] = bytes;
    ++count_;
    held_ += bytes;
    return true;
  }

 private:
  static bool& dead() {
    thread_local bool d = false;  // trivially destructible: still readable after ~BufferCache
    return d;
  }
  void* ptr_[kSlots] = {};
  size_t size_[kSlots] = {};
  int count_ = 0;
  size_t held_ = 0;
};

std::shared_ptr<uint8_t> allocate_aligned(size_t bytes, bool zero = true) {
  if (bytes > max_tensor_bytes())
    throw Error("a tensor of " + std::to_string(bytes) + " bytes is over the limit of " +
                std::to_string(max_tensor_bytes()) + " (TINYQ_MAX_TENSOR_BYTES)");
  size_t padded = (bytes + 64 + 63) / 64 * 64;
  const bool recycled = padded >= BufferCache::kMinBytes || padded <= BufferCache::kSmallMaxBytes;
  void* p = nullptr;
  if (recycled)
    if (BufferCache* c = BufferCache::get(padded)) p = c->take(padded);
#ifdef MADV_HUGEPAGE
  // A buffer of 2 MiB or more on whole transparent huge pages (Debian's default THP mode only
  // gives them to regions that ask): the convolutions stream such planes, and 4 KiB pages cost
  // them TLB misses (ptq-static on learned_filter_v1: 2-5% less time, peak memory +9 MB).
  constexpr size_t kHugePage = size_t{2} << 20;
  if (!p && padded >= kHugePage) {
    const size_t whole = (padded + kHugePage - 1) / kHugePage * kHugePage;
    p = std::aligned_alloc(kHugePage, whole);
    if (p) madvise(p, whole, MADV_HUGEPAGE);  // advice only: a refusal changes nothing
  }
#endif
  if (!p) p = std::aligned_alloc(64, padded);
  if (!p) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
  if (zero) std::memset(p, 0, padded);
  else std::memset(static_cast<uint8_t*>(p) + bytes, 0, padded - bytes);
  if (!recycled) return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(p), [](uint8_t* q) { std::free(q); });
  return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(p), [padded](uint8_t* q) {
    BufferCache* c = BufferCache::get(padded);
    if (!c || !c->give(q, padded)) std::free(q);
  });
}
}  // namespace

uint64_t max_tensor_bytes() {
  static const uint64_t limit = [] {
    const char* s = std::getenv("TINYQ_MAX_TENSOR_BYTES");
    char* end = nullptr;
    const unsigned long long v = s && *s ? std::strtoull(s, &end, 10) : 0;
    return v > 0 && end && *end == '\0' ? static_cast<uint64_t>(v) : uint64_t{4} << 30;
  }();
  return limit;
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  if (!dtype_is_numeric(dtype_))
    throw Error(std::string("tensors of type ") + dtype_name(dtype_) + " are not supported");
  numel_ = shape_numel(shape_);
  data_ = allocate_aligned(nbytes());
}

Tensor Tensor::uninitialized(DType dtype, Shape shape) {
  if (!dtype_is_numeric(dtype))
    throw Error(std::string("tensors of type ") + dtype_name(dtype) + " are not supported");
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  t.data_ = allocate_aligned(t.nbytes(), false);
  return t;
}

Tensor Tensor::view(DType dtype, Shape shape, void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  t.data_ = std::shared_ptr<uint8_t>(static_cast<uint8_t*>(data), [](uint8_t*) {});
  return t;
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_numel(shape) != numel_)
    throw Error("cannot reshape " + shape_to_string(shape_) + " to " + shape_to_string(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::clone() const {
  if (empty()) return Tensor();
  Tensor t(dtype_, shape_);
  if (nbytes()) std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

bool Tensor::bit_equal(const Tensor& other) const {
  if (dtype_ != other.dtype_ || shape_ != other.shape_) return false;
  return nbytes() == 0 || std::memcmp(raw(), other.raw(), nbytes()) == 0;
}

void Tensor::check_type(DType want) const {
  if (dtype_ != want)
    throw Error(std::string("tensor holds ") + dtype_name(dtype_) + ", accessed as " +
                dtype_name(want));
}

void Tensor::copy_in(Tensor& t, const void* src, size_t bytes) {
  if (bytes != t.nbytes())
    throw Error("value count does not match shape " + shape_to_string(t.shape_));
  if (bytes) std::memcpy(t.raw(), src, bytes);
}

namespace {
template <typename Out, typename In>
void widen(const Tensor& t, std::vector<Out>& out) {
  const In* p = static_cast<const In*>(t.raw());
  out.assign(p, p + t.numel());
}
}  // namespace

std::vector<int64_t> tensor_to_int64s(const Tensor& t) {
  std::vector<int64_t> out;
  switch (t.dtype()) {
    case DType::I64: widen<int64_t, int64_t>(t, out); break;
    case DType::I32: widen<int64_t, int32_t>(t, out); break;
    case DType::I16: widen<int64_t, int16_t>(t, out); break;
    case DType::I8: widen<int64_t, int8_t>(t, out); break;
    case DType::U8: widen<int64_t, uint8_t>(t, out); break;
    case DType::U16: widen<int64_t, uint16_t>(t, out); break;
    case DType::U32: widen<int64_t, uint32_t>(t, out); break;
    case DType::U64: widen<int64_t, uint64_t>(t, out); break;
    case DType::Bool: widen<int64_t, bool>(t, out); break;
    default:
      throw Error(std::string("expected an integer tensor, got ") + dtype_name(t.dtype()));
  }
  return out;
}

std::vector<double> tensor_to_doubles(const Tensor& t) {
  std::vector<double> out;
  switch (t.dtype()) {
    case DType::F32: widen<double, float>(t, out); break;
    case DType::F64: widen<double, double>(t, out); break;
    default: {
      std::vector<int64_t> ints = tensor_to_int64s(t);
      out.assign(ints.begin(), ints.end());
    }
  }
  return out;
}

}  // namespace tinyq
