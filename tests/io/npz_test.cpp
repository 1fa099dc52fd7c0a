// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "common/file_util.h"
#include "test_support.h"
#include "tinyq/error.h"
#include "tinyq/npz.h"

namespace tinyq {
namespace {

Tensor iota(DType dtype, Shape shape) {
  Tensor t(dtype, shape);
  auto* p = static_cast<uint8_t*>(t.raw());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<uint8_t>(i * 37 + 11);
  if (dtype == DType::Bool)
    for (size_t i = 0; i < t.nbytes(); ++i) p[i] &= 1;
  return t;
}

TEST(Npy, RoundTripsEveryType) {
  for (DType t : {DType::F32, DType::F64, DType::I8, DType::U8, DType::I32, DType::I64, DType::Bool,
                  DType::I16, DType::U16}) {
    for (Shape shape : {Shape{}, Shape{0}, Shape{7}, Shape{2, 3, 4}}) {
      Tensor a = iota(t, shape);
      Tensor b = parse_npy(serialize_npy(a), "mem");
      EXPECT_TRUE(a.bit_equal(b)) << dtype_name(t) << " " << shape_to_string(shape);
    }
  }
}

std::string npy_with_header(const std::string& dict, size_t data_bytes) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + std::string(data_bytes, '\0');
}

TEST(Npy, RefusesPicklesFortranAndBigEndian) {
  struct Case {
    const char* header;
    const char* message;
  } cases[] = {
      {"{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", "object arrays"},
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", "Fortran"},
      {"{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", "big-endian"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", "structured"},
      {"{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", "unsupported npy dtype"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", "needs 12"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", "too large"},
  };
  for (const auto& c : cases) {
    try {
      parse_npy(npy_with_header(c.header, 8), "x.npy");
      ADD_FAILURE() << "accepted " << c.header;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << e.what();
      EXPECT_EQ(e.subject(), "x.npy");
    }
  }
  EXPECT_THROW(parse_npy("garbage", "g"), Error);
  EXPECT_THROW(parse_npy(std::string("\x93NUMPY\x01\x00\xff\xff", 10), "t"), Error);
  // A format 2 header may declare up to 4 GiB; one past the header limit is refused by its
  // declared length, before any of it is read.
  try {
    parse_npy(std::string("\x93NUMPY\x02\x00\xf0\xff\xff\xff", 12) + std::string(64, ' '), "big.npy");
    ADD_FAILURE() << "accepted a 4 GiB header";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("over the limit"), std::string::npos) << e.what();
  }
}

TEST(Npz, RoundTripsStoredAndDeflated) {
  std::string dir = test::temp_dir();
  NamedTensors arrays = {{"features__0", iota(DType::F32, {1, 6})},
                         {"w", iota(DType::I8, {4, 4})},
                         {"ids", iota(DType::I64, {3})}};
  for (bool compress : {false, true}) {
    std::string path = dir + (compress ? "/c.npz" : "/s.npz");
    write_npz(path, arrays, compress);
    NamedTensors back = read_npz(path);
    ASSERT_EQ(back.size(), arrays.size());
    for (size_t i = 0; i < arrays.size(); ++i) {
      EXPECT_EQ(back[i].first, arrays[i].first);
      EXPECT_TRUE(back[i].second.bit_equal(arrays[i].second));
    }
  }
}

TEST(Npz, ReadsNumpyWrittenFiles) {
  TINYQ_REQUIRE_SHARED();
  NamedTensors in = read_npz(test::shared_dir() + "/reference/ort-1.30/vmaf_tiny_v3.gate_inputs.npz");
  ASSERT_EQ(in.size(), 16u);
  const Tensor* first = find_array(in, "features__0");
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(shape_to_string(first->shape()), "[1,6]");
  EXPECT_FLOAT_EQ(first->data<float>()[0], 0.8506242f);
  EXPECT_FLOAT_EQ(first->data<float>()[1], 0.63696164f);
  NamedTensors out = read_npz(test::shared_dir() + "/reference/ort-1.30/nr_metric_v1.gate_fp32_out.npz");
  EXPECT_EQ(out.size(), 16u);
  EXPECT_NE(find_array(out, "arr_15"), nullptr);
}

TEST(Npz, FilesLoadInNumpy) {
  if (std::system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) GTEST_SKIP() << "python3-numpy is absent";
  std::string dir = test::temp_dir();
  write_npz(dir + "/a.npz", {{"x", Tensor::from_vector<float>({2, 2}, {1.5f, -2, 3, 4})},
                             {"q", Tensor::from_vector<int8_t>({3}, {-128, 0, 127})}}, true);
  auto r = test::run_command("/usr/bin/python3 -c \"import numpy as np; d=np.load('" + dir +
                             "/a.npz'); print(d['x'].sum(), d['x'].shape, d['q'].dtype, d['q'].tolist())\"");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "6.5 (2, 2) int8 [-128, 0, 127]\n");
}

TEST(Npz, RefusesBrokenArchives) {
  std::string dir = test::temp_dir();
  write_file_atomic(dir + "/empty.npz", "");
  write_file_atomic(dir + "/random.npz", "PK\x03\x04 random bytes that are not a zip");
  for (const char* name : {"/empty.npz", "/random.npz", "/missing.npz"}) {
    EXPECT_THROW(read_npz(dir + name), Error) << name;
  }
  // Truncated: a valid archive cut in half.
  write_npz(dir + "/ok.npz", {{"x", iota(DType::F32, {64, 64})}}, true);
  std::string bytes = read_file_bounded(dir + "/ok.npz", 1 << 20);
  write_file_atomic(dir + "/cut.npz", bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(read_npz(dir + "/cut.npz"), Error);
  // A member that is not .npy.
  std::string patched = bytes;
  for (size_t p = patched.find("x.npy"); p != std::string::npos; p = patched.find("x.npy", p + 1)) patched.replace(p, 5, "x.pkl");
  write_file_atomic(dir + "/pkl.npz", patched);
  EXPECT_THROW(read_npz(dir + "/pkl.npz"), Error);
}

TEST(Npz, RefusesMembersWhoseDataFailsTheirChecksum) {
  // Members are read straight into their tensors; a flipped data byte must still be caught
  // (by the CRC at the member's end), stored or deflated.
  std::string dir = test::temp_dir();
  const Tensor x = iota(DType::F32, {32, 32});
  write_npz(dir + "/ok.npz", {{"x", x}}, false);
  std::string bytes = read_file_bounded(dir + "/ok.npz", 1 << 20);
  const std::string needle(static_cast<const char*>(x.raw()) + 400, 16);  // data, not header
  const size_t at = bytes.find(needle);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 3] = static_cast<char>(bytes[at + 3] ^ 0x40);
  write_file_atomic(dir + "/flipped.npz", bytes);
  try {
    read_npz(dir + "/flipped.npz");
    ADD_FAILURE() << "accepted a member that fails its CRC";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("corrupt"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_npz(dir + "/ok.npz").at(0).second.nbytes(), x.nbytes());
}

TEST(Npz, DeclaredSizeIsBoundedBeforeInflating) {
  // 64 MB of zeros deflates to ~64 KB: a small zip bomb. The limit refuses it by its declared size.
  std::string dir = test::temp_dir();
  write_npz(dir + "/bomb.npz", {{"z", Tensor(DType::U8, {64 << 20})}}, true);
  EXPECT_LT(file_size(dir + "/bomb.npz"), 1u << 20);
  NpzLimits limits;
  limits.max_total_bytes = 1 << 20;
  try {
    read_npz(dir + "/bomb.npz", limits);
    ADD_FAILURE() << "zip bomb accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("over the limit"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tinyq
