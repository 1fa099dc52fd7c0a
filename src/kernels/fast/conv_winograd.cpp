// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/fast/conv_winograd.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "kernels/fast/thread_pool.h"

namespace tinyq::kernels {

namespace {

inline int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// G (alpha x 3) for m = 2 and m = 4 (points 0, 1, -1 [, 2, -2] and infinity), as in
// winograd_kernels.h. Applied in double so u carries one rounding.
const double kG2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
const double kG4[6][3] = {{1.0 / 4, 0, 0},
                          {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                          {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                          {1.0 / 24, 1.0 / 12, 1.0 / 6},
                          {1.0 / 24, -1.0 / 12, 1.0 / 6},
                          {0, 0, 1}};

// Transformed input and GEMM output of one block (alpha^2 x (C + M) x tiles floats) are kept
// under this many bytes, so they stay in L2 between the three steps (learned_filter on Zen 4:
// 128 KiB measured ~7% slower, 256 and 512 KiB alike).
constexpr int64_t kBlockBytes = 256 * 1024;

// Above this size of F(4x4)'s transformed weights, F(2x2)'s are not kept as well.
constexpr int64_t kBothTilesMaxBytes = 16 << 20;

// -1: unset, 0: off, 2 / 4: tile size.
int env_tile() {
  static const int v = [] {
    const char* s = std::getenv("TINYQ_WINOGRAD");
    if (!s || !*s) return -1;
    if (std::strcmp(s, "0") == 0) return 0;
    if (std::strcmp(s, "2") == 0) return 2;
    if (std::strcmp(s, "4") == 0) return 4;
    return -1;
  }();
  return v;
}

// Tiles per block are a multiple of this: the AVX2 and portable kernels' 8 lanes; the AVX-512
// kernels take a last half vector, so a 56-tile row costs 56 lanes, not 64.
constexpr int64_t kTileAlign = 8;

// Requests n floats from p into L2, one request per cache line (`write`: for writing). GCC
// sees prefetches as touching no memory, so a function of nothing else counts as free of side
// effects and its calls are deleted; the empty volatile asm says otherwise.
inline void prefetch_span(const float* p, int64_t n, bool write) {
  const char* b = reinterpret_cast<const char*>(p);
  const char* e = reinterpret_cast<const char*>(p + n);
  for (; b < e; b += 64) {
    if (write)
      __builtin_prefetch(b, 1, 2);
    else
      __builtin_prefetch(b, 0, 2);
  }
  __asm__ __volatile__("");
}

// Output channels per packed weight block: the AVX2 GEMM tile is 4 x 3 ymm, the AVX-512 one
// 8 x 3 zmm (the portable kernel takes any).
int mr_of(Isa isa) { return isa == Isa::Avx2 ? 4 : 8; }

}  // namespace

bool winograd_enabled() { return env_tile() != 0; }

std::string ConvF32Winograd::declines(const ConvParams& wg) {
  if (wg.spatial_rank != 2) return "2-D convolutions only";
  if (wg.kernel[0] != 3 || wg.kernel[1] != 3) return "3x3 kernels only";
  if (wg.group != 1) return "one group only";
  for (int a = 0; a < 2; ++a) {
    if (wg.stride[a] != 1) return "stride 1 only";
    if (wg.dilation[a] != 1) return "dilation 1 only";
  }
  if (wg.in_channels < kMinChannels || wg.out_channels < kMinChannels)
    return "fewer than " + std::to_string(kMinChannels) +
           " input or output channels (the direct kernel measured faster)";
  if (!winograd_enabled()) return "disabled by TINYQ_WINOGRAD=0";
  return "";
}

bool ConvF32Winograd::takes(const ConvParams& p) {
  if (p.spatial_rank != 2 || p.group != 1 || p.kernel[0] != 3 || p.kernel[1] != 3) return false;
  for (int a = 0; a < 2; ++a)
    if (p.stride[a] != 1 || p.dilation[a] != 1 || p.out_size[a] < 1 || p.in_size[a] < 1) return false;
  return p.batch >= 1;
}

ConvF32Winograd::ConvF32Winograd(Isa isa, const ConvParams& wg, const float* weights, int tile)
    : isa_(isa), mr_(mr_of(isa)), c_(wg.in_channels), k_(wg.out_channels), direct_(isa, wg, weights) {
  input_fn_ = kernel_at(isa, wino_input_ref, TINYQ_X86_KERNEL(wino_input_avx2), TINYQ_X86_KERNEL(wino_input_avx512));
  gemm_fn_ = kernel_at(isa, wino_gemm_ref, TINYQ_X86_KERNEL(wino_gemm_avx2), TINYQ_X86_KERNEL(wino_gemm_avx512));
  output_fn_ =
      kernel_at(isa, wino_output_ref, TINYQ_X86_KERNEL(wino_output_avx2), TINYQ_X86_KERNEL(wino_output_avx512));
  k_padded_ = round_up(k_, mr_);
  if (tile == 0 && env_tile() > 0) tile = env_tile();
  // Both tile sizes unless one is asked for: F(2x2) wins on narrow planes, where F(4x4)'s
  // tile rows fill few vector lanes (run() chooses). F(2x2)'s u is 16/36 of F(4x4)'s; very
  // wide layers keep F(4x4) alone.
  const bool both = tile == 0 && 36 * k_padded_ * c_ * static_cast<int64_t>(sizeof(float)) <= kBothTilesMaxBytes;
  if (tile == 2 || both) plans_.push_back(make_plan(2, weights));
  if (tile != 2) plans_.push_back(make_plan(4, weights));
  const char* isa_part = isa == Isa::Ref ? "ref" : isa == Isa::Avx2 ? "avx2_fma" : "avx512";
  const char* tile_part = plans_.size() == 2 ? "" : plans_[0].m == 2 ? "2x2" : "4x4";
  name_ = std::string("conv_f32_winograd") + tile_part + "_" + isa_part;
}

ConvF32Winograd::Plan ConvF32Winograd::make_plan(int m, const float* weights) const {
  // u[xi = alpha i + j][k][c] = (G g[k][c] G^T)[i][j], packed in blocks of mr output channels.
  Plan pl;
  pl.m = m;
  pl.alpha = m + 2;
  const int64_t blocks = k_padded_ / mr_, positions = static_cast<int64_t>(pl.alpha) * pl.alpha;
  pl.u.assign(static_cast<size_t>(positions * k_padded_ * c_), 0.0f);
  auto G = [m](int i, int a) { return m == 2 ? kG2[i][a] : kG4[i][a]; };
  for (int64_t k = 0; k < k_; ++k)
    for (int64_t c = 0; c < c_; ++c) {
      const float* g = weights + (k * c_ + c) * 9;
      double gg[6][3];  // G g
      for (int i = 0; i < pl.alpha; ++i)
        for (int b = 0; b < 3; ++b) {
          double s = 0.0;
          for (int a = 0; a < 3; ++a) s += G(i, a) * static_cast<double>(g[a * 3 + b]);
          gg[i][b] = s;
        }
      for (int i = 0; i < pl.alpha; ++i)
        for (int j = 0; j < pl.alpha; ++j) {
          double s = 0.0;
          for (int b = 0; b < 3; ++b) s += gg[i][b] * G(j, b);
          const int64_t xi = i * pl.alpha + j;
          pl.u[static_cast<size_t>(((xi * blocks + k / mr_) * c_ + c) * mr_ + k % mr_)] = static_cast<float>(s);
        }
    }
  return pl;
}

ConvF32Winograd::Blocking ConvF32Winograd::blocking(const Plan& pl, const ConvParams& p) const {
  Blocking b;
  b.tiles_h = ceil_div(p.out_size[0], pl.m);
  b.tiles_w = ceil_div(p.out_size[1], pl.m);
  // Tiles per block: as many vectors as fit the L2 budget, the tile row split evenly.
  const int64_t positions = static_cast<int64_t>(pl.alpha) * pl.alpha;
  const int64_t per_tile = positions * (c_ + k_padded_) * static_cast<int64_t>(sizeof(float));
  const int64_t cap = std::max<int64_t>(kTileAlign, kBlockBytes / per_tile / kTileAlign * kTileAlign);
  b.segs = ceil_div(b.tiles_w, cap);
  b.ld = round_up(ceil_div(b.tiles_w, b.segs), kTileAlign);
  b.segs = ceil_div(b.tiles_w, b.ld);
  // Each block computes its tiles rounded up to kTileAlign (56 tiles: 32 + 24, not 2 x 32).
  const int64_t last = b.tiles_w - (b.segs - 1) * b.ld;
  const int64_t lanes = (b.segs - 1) * b.ld + round_up(last, kTileAlign);
  // Work in vector lanes: every transform and GEMM step costs about alpha^2 per lane.
  b.cost = positions * b.tiles_h * lanes;
  return b;
}

int ConvF32Winograd::tile_for(const ConvParams& p) const {
  if (!winograd_run(p)) return 0;
  return plans_[choose(p)].m;
}

size_t ConvF32Winograd::choose(const ConvParams& p) const {
  if (plans_.size() == 1) return 0;
  // plans_ = {F(2x2), F(4x4)}; F(4x4) on ties (fewer passes over the plane).
  return blocking(plans_[1], p).cost <= blocking(plans_[0], p).cost ? 1 : 0;
}

void ConvF32Winograd::run(const ConvParams& p, const float* src, const ConvF32Epilogue& ep, float* dst,
                          int threads) const {
  run_rows(p, src, ep, dst, threads, 0, p.out_size[0]);
}

int64_t ConvF32Winograd::row_step(const ConvParams& p) const {
  if (!winograd_run(p)) return direct_.row_step(p);
  return plans_[choose(p)].m;
}

bool ConvF32Winograd::winograd_run(const ConvParams& p) const {
  return takes(p) && p.in_channels == c_ && p.out_channels == k_;
}

void ConvF32Winograd::run_rows(const ConvParams& p, const float* src, const ConvF32Epilogue& ep, float* dst,
                               int threads, int64_t row0, int64_t row1, RowRings rings) const {
  if (!winograd_run(p)) {
    if (rings.src || rings.dst) throw std::logic_error(name_ + ": rings need a Winograd run");
    if (row0 == 0 && row1 == p.out_size[0])
      direct_.run(p, src, ep, dst, threads);
    else
      direct_.run_rows(p, src, ep, dst, threads, row0, row1);
    return;
  }
  const Plan& pl = plans_[choose(p)];
  const Blocking bk = blocking(pl, p);
  const int m = pl.m, alpha = pl.alpha;
  const int64_t H = p.in_size[0], W = p.in_size[1], OH = p.out_size[0], OW = p.out_size[1];
  const int64_t positions = static_cast<int64_t>(alpha) * alpha;
  // Tile rows [th0, th0 + tiles_h) of every image: those of output rows [row0, row1).
  const int64_t th0 = row0 / m, tiles_h = ceil_div(std::min(row1, OH), m) - th0;
  const int64_t tiles_w = bk.tiles_w, segs = bk.segs, ld = bk.ld;
  if (tiles_h <= 0) return;
  const int64_t blocks = p.batch * tiles_h * segs;

  // Scratch per thread: v, o (64-byte aligned), then the row pointers. The positions' planes
  // are one cache line further apart than they need: at a multiple of 4 KiB the alpha^2
  // streams of a transform would share one L1 set (measured: transforms 2x slower).
  const int64_t v_stride = round_up(c_ * ld, 16) + 16, o_stride = round_up(k_padded_ * ld, 16) + 16;
  const int64_t v_floats = positions * v_stride, o_floats = positions * o_stride;
  const int64_t ptr_bytes = round_up(alpha * c_ * static_cast<int64_t>(sizeof(const float*)), 64);
  const int64_t part_bytes = (v_floats + o_floats) * static_cast<int64_t>(sizeof(float)) + ptr_bytes;
  const double macs = static_cast<double>(p.batch) * k_ * tiles_h * m * OW * c_ * 9;
  const int parts = static_cast<int>(std::min<int64_t>(useful_threads(threads, macs), blocks));
  ScratchCache::Lease lease(scratch_, static_cast<size_t>(parts * part_bytes));
  uint8_t* scratch = lease.as<uint8_t>();

  // Rows as stored: plane rows (whole planes, or a ring's) and where row r lies.
  const int64_t src_rows = rings.src ? rings.src : H, dst_rows = rings.dst ? rings.dst : OH;
  const int64_t in_image = c_ * src_rows * W, out_image = k_ * dst_rows * OW;
  auto src_row = [&](int64_t n, int64_t c, int64_t ih) {
    return src + n * in_image + (c * src_rows + ih % src_rows) * W;
  };
  auto dst_off = [&](int64_t n, int64_t k, int64_t oh) { return n * out_image + (k * dst_rows + oh % dst_rows) * OW; };
  struct BlockAt {
    int64_t n, th, tw0, tiles;
  };
  auto block_at = [&](int64_t blk) {
    const int64_t sg = blk % segs, tw0 = sg * ld;
    return BlockAt{blk / (tiles_h * segs), th0 + (blk / segs) % tiles_h, tw0, std::min(ld, tiles_w - tw0)};
  };
  // The planes' rows are short runs here (a block's columns of a few rows per channel), too
  // many at once for the hardware prefetchers: while a block's GEMMs compute, the rows its
  // output step reads (residual) and writes, and the next block's input rows, are requested
  // into L2 (learned_filter: 12.3 against 14.7 ms with the machine's memory shared and busy,
  // even when it is quiet).
  auto prefetch = [&](const BlockAt& at, const BlockAt* next) {
    const int64_t rows_out = std::min<int64_t>(m, OH - at.th * m), c0 = at.tw0 * m;
    const int64_t len = std::min<int64_t>(OW, c0 + m * at.tiles) - c0;
    for (int64_t k = 0; k < k_; ++k)
      for (int64_t i = 0; i < rows_out; ++i) {
        const int64_t off = dst_off(at.n, k, at.th * m + i) + c0;
        prefetch_span(dst + off, len, true);
        if (ep.pre) prefetch_span(ep.pre + off, len, true);
        if (ep.residual) prefetch_span(ep.residual + off, len, false);
      }
    if (!next) return;
    const int64_t col = std::max<int64_t>(0, next->tw0 * m - p.pad_begin[1]);
    const int64_t end = std::min<int64_t>(W, next->tw0 * m - p.pad_begin[1] + m * next->tiles + 2);
    for (int64_t c = 0; c < c_ && end > col; ++c)
      for (int r = 0; r < alpha; ++r) {
        const int64_t ih = next->th * m - p.pad_begin[0] + r;
        if (ih >= 0 && ih < H) prefetch_span(src_row(next->n, c, ih) + col, end - col, false);
      }
  };
  // One block: input transform -> alpha^2 GEMMs -> output transform with the whole epilogue
  // (ranges measured as it stores), in a thread's scratch.
  auto run_block = [&](int64_t blk, uint8_t* mine, FiniteRange* range, FiniteRange* pre_range) {
    float* v = reinterpret_cast<float*>(mine);
    float* o = v + v_floats;
    const float** rows = reinterpret_cast<const float**>(o + o_floats);
    const BlockAt at = block_at(blk), next_at = block_at(std::min(blk + 1, blocks - 1));
    for (int64_t c = 0; c < c_; ++c)
      for (int r = 0; r < alpha; ++r) {
        const int64_t ih = at.th * m - p.pad_begin[0] + r;
        rows[c * alpha + r] = ih >= 0 && ih < H ? src_row(at.n, c, ih) : nullptr;
      }
    WinoInput in;
    in.m = m;
    in.rows = rows;
    in.in_col0 = at.tw0 * m - p.pad_begin[1];
    in.width = W;
    in.tiles = at.tiles;
    in.channels = c_;
    in.dst = v;
    const int64_t block_ld = round_up(at.tiles, kTileAlign);  // <= ld: the strides stay ld's
    in.ld = block_ld;
    in.xi_stride = v_stride;
    input_fn_(in);
    prefetch(at, blk + 1 < blocks ? &next_at : nullptr);
    WinoGemm g;
    g.v = v;
    g.u = pl.u.data();
    g.o = o;
    g.positions = positions;
    g.channels = c_;
    g.m_padded = k_padded_;
    g.ld = block_ld;
    g.v_stride = v_stride;
    g.o_stride = o_stride;
    g.mr = mr_;
    gemm_fn_(g);
    WinoOutput out;
    out.m = m;
    out.o = o;
    out.ld = block_ld;
    out.xi_stride = o_stride;
    out.channels = k_;
    out.tiles = at.tiles;
    // In a ring the tile row starts at its row modulo the ring (whole tile rows: no wrap).
    out.dst = dst + at.n * out_image;
    out.out_w = OW;
    out.plane = dst_rows * OW;
    out.row0 = at.th * m % dst_rows;
    out.out_h = out.row0 + std::min<int64_t>(m, OH - at.th * m);
    out.col0 = at.tw0 * m;
    out.bias = ep.bias;
    out.residual = ep.residual ? ep.residual + at.n * out_image : nullptr;
    out.clamp = ep.clamp;
    out.lo = ep.lo;
    out.hi = ep.hi;
    out.pre = ep.also_pre() && ep.pre ? ep.pre + at.n * out_image : nullptr;
    out.pre_range = ep.also_pre() && ep.pre_range ? pre_range : nullptr;
    out.range = ep.range ? range : nullptr;
    output_fn_(out);
  };
  // Threads take runs of consecutive blocks from a shared counter rather than fixed shares: on
  // a loaded machine a worker that starts late then finds less left to do instead of holding
  // the caller up by its whole share (with fixed halves --threads 2 measured slower than 1).
  const int64_t run_len = std::max<int64_t>(1, blocks / (8 * static_cast<int64_t>(parts)));
  std::atomic<int64_t> next_block{0};
  RangeSink sink(ep);
  parallel_for(parts, parts, [&](int64_t part0, int64_t part1) {
    FiniteRange mine, mine_pre;
    for (int64_t part = part0; part < part1; ++part) {
      for (;;) {
        const int64_t b0 = next_block.fetch_add(run_len, std::memory_order_relaxed);
        if (b0 >= blocks) break;
        for (int64_t blk = b0; blk < std::min(blocks, b0 + run_len); ++blk)
          run_block(blk, scratch + part * part_bytes, &mine, &mine_pre);
      }
    }
    sink.merge(mine, mine_pre);
  });
}

}  // namespace tinyq::kernels
