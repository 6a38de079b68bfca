// The synthetic cohort: storage layouts (how a phantom in the patient frame
// becomes voxels plus an affine) and the parallel writer of
// DIR/studies/CT-g/study_NNNN.nii.gz. The phantom itself is data/phantom.cpp.
#include <zlib.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "base/atomic_file.h"
#include "data/synth.h"
#include "engine/tensor.h"

namespace ctg::data {

namespace fs = std::filesystem;

namespace {

// A layout: stored voxel axis a (i, j, k) runs along patient-frame axis
// perm[a] (0 column, 1 row, 2 slice), reversed when flip[a]. Its name spells
// where each stored index points as it grows, NIfTI-style (RAS = i towards
// the patient's right, j anterior, k superior).
struct Layout {
  const char* name;
  int perm[3];
  bool flip[3];
};
const Layout kLayouts[kSynthLayouts] = {
    {"LPS", {0, 1, 2}, {false, false, false}},  // the patient frame itself
    {"RAS", {0, 1, 2}, {true, true, false}},    // nibabel's canonical order
    {"PLI", {1, 0, 2}, {false, false, true}},   // transposed, slices top to bottom
    {"LAI", {0, 1, 2}, {false, true, true}},
};

const Layout& layout_at(int layout) {
  if (layout < 0 || layout >= kSynthLayouts)
    throw Error("synth: layout must be 0.." + std::to_string(kSynthLayouts - 1) + ", not " + std::to_string(layout));
  return kLayouts[layout];
}

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The layout of a study: its own hash of (seed, id), independent of the
// phantom's random stream, so changing the mix never changes the anatomy.
int choose_layout(uint64_t seed, int64_t study_id, double reoriented_fraction) {
  const uint64_t h = mix64(mix64(seed ^ 0x1A40u) ^ (uint64_t)study_id);
  const double u = (double)(h >> 11) * 0x1.0p-53;
  return u < reoriented_fraction ? 1 + (int)((h & 0xFF) % (kSynthLayouts - 1)) : 0;
}

// The cohort's .nii.gz writer. write_nifti would do, but for each 20 MB
// volume it zero-fills and copies a whole file image and compresses with
// zlib's default strategy; here the header and the voxels are streamed into
// a per-worker buffer with the run-length strategy (Z_RLE). On CT noise,
// string matching finds next to nothing; RLE still catches the runs of −1024
// air and is about twice as fast for ~7 % more bytes. The header is
// encode_nifti's own (of the first slice, then dim[3] set to the slice count:
// NIfTI-1 keeps dim[0..7] as int16 at byte 40, and nothing else in the
// header depends on it), so the geometry logic lives in one place.
class CohortWriter {
 public:
  void write(const std::string& path, const NiftiWriteSpec& spec, const int16_t* voxels) {
    if (spec.format != 1 || spec.byte_order != ByteOrder::little || spec.volumes != 1)
      throw Error(path + ": synth writes little-endian single-volume NIfTI-1 only");
    NiftiWriteSpec one = spec;
    one.nz = 1;
    std::vector<uint8_t> header = encode_nifti(one, kNiftiInt16, voxels, false);
    header.resize(352);  // 348-byte header + 4-byte empty extension flag
    header[46] = (uint8_t)(spec.nz & 0xFF), header[47] = (uint8_t)(spec.nz >> 8);

    z_stream zs;
    std::memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, spec.gzip_level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_RLE) != Z_OK)
      throw Error(path + ": cannot initialise zlib");
    const size_t data_bytes = (size_t)(spec.nx * spec.ny * spec.nz) * 2;
    const size_t bound = deflateBound(&zs, header.size() + data_bytes) + 64;
    if (out_.size() < bound) out_.resize(bound);
    zs.next_out = out_.data(), zs.avail_out = (uInt)out_.size();
    zs.next_in = header.data(), zs.avail_in = (uInt)header.size();
    int rc = deflate(&zs, Z_NO_FLUSH);
    zs.next_in = (Bytef*)const_cast<int16_t*>(voxels), zs.avail_in = (uInt)data_bytes;
    if (rc == Z_OK) rc = deflate(&zs, Z_FINISH);
    const size_t produced = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) throw Error(path + ": gzip compression failed (zlib " + std::to_string(rc) + ")");

    // Atomic: a reader never sees half a file. No fsync: the cohort can be
    // regenerated, and syncing ~10 MB files one by one would cost more than
    // generating them.
    AtomicFile f(path);
    f.write(out_.data(), produced);
    f.commit(AtomicFile::Sync::rename_only);
    bytes_ = produced;
  }
  uint64_t bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> out_;
  uint64_t bytes_ = 0;
};

}  // namespace

const char* synth_layout_name(int layout) { return layout_at(layout).name; }

NiftiWriteSpec synth_spec(const SynthVolume& v, int layout) {
  const Layout& L = layout_at(layout);
  const int64_t n[3] = {v.size, v.size, v.slices};
  // World (NIfTI RAS+: +x towards the patient's right, +y anterior, +z
  // superior) of patient-frame index q: the column grows towards the
  // patient's left (−x), the row posteriorly (−y), the slice superiorly.
  const double step[3][3] = {{-v.pixel_mm, 0, 0}, {0, -v.pixel_mm, 0}, {0, 0, v.slice_mm}};
  NiftiWriteSpec spec;
  spec.nx = n[L.perm[0]], spec.ny = n[L.perm[1]], spec.nz = n[L.perm[2]];
  spec.qform_code = 1, spec.sform_code = 1;  // scanner-based anatomical coordinates
  spec.gzip_level = 1;
  Affine& a = spec.affine;
  a = identity_affine();
  for (int r = 0; r < 3; ++r) a[r][3] = 0;
  for (int ax = 0; ax < 3; ++ax) {
    const int p = L.perm[ax];
    // Stored index 0 is patient-frame index 0, or n − 1 on a reversed axis;
    // pixel centres sit at q + 0.5 − n/2 steps from the volume's centre.
    const double q0 = L.flip[ax] ? (double)n[p] - 1 : 0, from_centre = q0 + 0.5 - (double)n[p] / 2;
    for (int r = 0; r < 3; ++r) {
      a[r][ax] = (L.flip[ax] ? -1 : 1) * step[p][r];
      a[r][3] += from_centre * step[p][r];
    }
  }
  return spec;
}

NiftiWriteSpec synth_store(const SynthVolume& v, int layout, std::vector<int16_t>* stored) {
  const Layout& L = layout_at(layout);
  const NiftiWriteSpec spec = synth_spec(v, layout);
  const int64_t n[3] = {v.size, v.size, v.slices};
  // Stored offset of patient-frame voxel (c, r, k) = base + Σ q_p · stride[p].
  const int64_t stored_stride[3] = {1, spec.nx, spec.nx * spec.ny};
  int64_t base = 0, stride[3];
  for (int ax = 0; ax < 3; ++ax) {
    const int p = L.perm[ax];
    stride[p] = L.flip[ax] ? -stored_stride[ax] : stored_stride[ax];
    if (L.flip[ax]) base += (n[p] - 1) * stored_stride[ax];
  }
  stored->resize(v.hu.size());
  // In 32 × 32 tiles, so that a transposing layout stays within the cache.
  constexpr int64_t T = 32;
  for (int64_t k = 0; k < n[2]; ++k)
    for (int64_t r0 = 0; r0 < n[1]; r0 += T)
      for (int64_t c0 = 0; c0 < n[0]; c0 += T)
        for (int64_t r = r0; r < std::min(r0 + T, n[1]); ++r) {
          const int16_t* src = v.hu.data() + (k * n[1] + r) * n[0];
          int16_t* dst = stored->data() + base + k * stride[2] + r * stride[1];
          for (int64_t c = c0; c < std::min(c0 + T, n[0]); ++c) dst[c * stride[0]] = src[c];
        }
  return spec;
}

std::vector<SynthPatient> synth_cohort(const std::string& dir, const SynthOptions& opt,
                                       const std::function<void(int64_t, int64_t, const SynthPatient&)>& progress) {
  if (opt.patients_per_grade < 1 || opt.patients_per_grade > 100000)
    throw Error("synth: --patients must be 1..100000, not " + std::to_string(opt.patients_per_grade));
  if (opt.gzip_level < 0 || opt.gzip_level > 9) throw Error("synth: gzip level must be 0..9");
  synth_check_size(opt.size, opt.slices);
  std::vector<SynthPatient> patients;
  for (int g = 0; g <= 4; ++g) {
    std::error_code ec;
    const fs::path sub = fs::path(dir) / "studies" / ("CT-" + std::to_string(g));
    fs::create_directories(sub, ec);
    if (ec) throw Error(sub.string() + ": cannot create directory: " + ec.message());
    for (int64_t i = 0; i < opt.patients_per_grade; ++i) {
      SynthPatient p;
      p.study_id = g * opt.patients_per_grade + i + 1;  // contiguous per grade, as in MosMedData
      p.grade = g;
      p.layout = choose_layout(opt.seed, p.study_id, opt.reoriented_fraction);
      char name[64];
      std::snprintf(name, sizeof name, "study_%04lld.nii.gz", (long long)p.study_id);
      p.path = "studies/CT-" + std::to_string(g) + "/" + name;
      patients.push_back(p);
    }
  }
  const int64_t total = (int64_t)patients.size();
  int workers = opt.workers > 0 ? opt.workers : (int)std::thread::hardware_concurrency();
  workers = (int)std::max<int64_t>(1, std::min<int64_t>(workers, total));

  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;  // guards done, error and the progress callback
  int64_t done = 0;
  std::string error;
  auto work = [&]() {
    SynthVolume v;  // buffers reused from patient to patient
    std::vector<int16_t> stored;
    CohortWriter writer;
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (i >= total || failed.load()) return;
      SynthPatient& p = patients[(size_t)i];
      try {
        synth_phantom(opt.seed, p.study_id, p.grade, opt.size, opt.slices, &v);
        p.involvement = v.involvement, p.target_involvement = v.target_involvement;
        // Layout 0 is the patient frame itself: no copy needed.
        NiftiWriteSpec spec = p.layout == 0 ? synth_spec(v, 0) : synth_store(v, p.layout, &stored);
        spec.gzip_level = opt.gzip_level;
        char descrip[80];
        std::snprintf(descrip, sizeof descrip, "ctgrad synth CT-%d involvement %.3f", p.grade, v.involvement);
        spec.descrip = descrip;
        writer.write((fs::path(dir) / p.path).string(), spec, p.layout == 0 ? v.hu.data() : stored.data());
        p.bytes = writer.bytes();
        std::lock_guard<std::mutex> lock(mu);
        ++done;
        if (progress) progress(done, total, p);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed.exchange(true)) error = e.what();
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (failed) throw Error(error);  // already names the file or the parameter

  std::string csv = "study,grade,layout,target_involvement,involvement,path\n";
  for (const SynthPatient& p : patients) {
    char line[256];
    std::snprintf(line, sizeof line, "study_%04lld,CT-%d,%s,%.4f,%.4f,%s\n", (long long)p.study_id, p.grade,
                  synth_layout_name(p.layout), p.target_involvement, p.involvement, p.path.c_str());
    csv += line;
  }
  write_file_atomic((fs::path(dir) / "synth.csv").string(), csv);
  return patients;
}

}  // namespace ctg::data
