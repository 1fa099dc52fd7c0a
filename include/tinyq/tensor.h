// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tinyq {

/// Element types; the values are ONNX's TensorProto.DataType numbers so conversion is a cast.
enum class DType : int32_t {
  Undefined = 0,
  F32 = 1,
  U8 = 2,
  I8 = 3,
  U16 = 4,
  I16 = 5,
  I32 = 6,
  I64 = 7,
  String = 8,
  Bool = 9,
  F16 = 10,
  F64 = 11,
  U32 = 12,
  U64 = 13,
  BF16 = 16,
};

/// Bytes per element; 0 for Undefined and String (tinyq holds no string tensors).
size_t dtype_size(DType dtype);
/// ONNX's name for the type ("float", "int8", ...).
const char* dtype_name(DType dtype);
/// True for the types tinyq can hold in a Tensor (fixed-size numeric and bool).
bool dtype_is_numeric(DType dtype);

template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::F32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::F64; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::I8; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::U8; };
template <> struct DTypeOf<int16_t> { static constexpr DType value = DType::I16; };
template <> struct DTypeOf<uint16_t> { static constexpr DType value = DType::U16; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::I32; };
template <> struct DTypeOf<uint32_t> { static constexpr DType value = DType::U32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::I64; };
template <> struct DTypeOf<uint64_t> { static constexpr DType value = DType::U64; };
template <> struct DTypeOf<bool> { static constexpr DType value = DType::Bool; };

using Shape = std::vector<int64_t>;

/// Number of elements of a shape (1 for a scalar); throws tinyq::Error on negative dims or
/// overflow.
int64_t shape_numel(const Shape& shape);
/// "[1,3,224,224]".
std::string shape_to_string(const Shape& shape);

/// The largest tensor tinyq allocates, in bytes: 4 GiB, or $TINYQ_MAX_TENSOR_BYTES. A model
/// whose shapes ask for more (an Expand or ConstantOfShape to a huge shape, say) gets a
/// tinyq::Error instead of an allocation the system grants lazily and then kills the process for.
uint64_t max_tensor_bytes();

/// A dense, C-ordered, 64-byte-aligned tensor. Copies share the buffer (like a numpy view);
/// clone() makes a deep copy. Allocating one larger than max_tensor_bytes() throws tinyq::Error.
class Tensor {
 public:
  Tensor() = default;
  /// Zero-filled tensor of the given type and shape.
  Tensor(DType dtype, Shape shape);
  /// A tensor whose elements are unspecified, for code that writes every one of them (an op's
  /// output): skips the zero fill, which costs a pass over memory per activation.
  static Tensor uninitialized(DType dtype, Shape shape);
  /// Wraps memory owned elsewhere; the caller keeps it alive as long as the tensor.
  static Tensor view(DType dtype, Shape shape, void* data);

  template <typename T>
  static Tensor from_vector(Shape shape, const std::vector<T>& values) {
    Tensor t(DTypeOf<T>::value, std::move(shape));
    copy_in(t, values.data(), values.size() * sizeof(T));
    return t;
  }
  template <typename T>
  static Tensor scalar(T value) {
    return from_vector<T>({}, std::vector<T>{value});
  }

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  size_t rank() const { return shape_.size(); }
  int64_t dim(size_t i) const { return shape_[i]; }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  bool empty() const { return dtype_ == DType::Undefined; }

  void* raw() { return data_.get(); }
  const void* raw() const { return data_.get(); }
  template <typename T> T* data() { check_type(DTypeOf<T>::value); return static_cast<T*>(raw()); }
  template <typename T> const T* data() const {
    check_type(DTypeOf<T>::value);
    return static_cast<const T*>(raw());
  }
  template <typename T> std::vector<T> to_vector() const {
    const T* p = data<T>();
    return std::vector<T>(p, p + numel_);
  }

  /// Same buffer, new shape with the same element count.
  Tensor reshaped(Shape shape) const;
  Tensor clone() const;
  /// Byte-wise equality of type, shape and contents.
  bool bit_equal(const Tensor& other) const;

 private:
  void check_type(DType want) const;
  static void copy_in(Tensor& t, const void* src, size_t bytes);

  DType dtype_ = DType::Undefined;
  Shape shape_;
  int64_t numel_ = 0;
  std::shared_ptr<uint8_t> data_;
};

/// Values of an integer tensor (any int type) widened to int64, e.g. shapes and axes inputs.
std::vector<int64_t> tensor_to_int64s(const Tensor& t);
/// Values of a numeric tensor converted to double.
std::vector<double> tensor_to_doubles(const Tensor& t);

}  // namespace tinyq
