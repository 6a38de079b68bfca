// Parallel cache preparation with an in-order writer.
#include "data/prep.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "engine/tensor.h"

namespace ctg::data {

std::string split_csv_path(const std::string& cache_path) { return cache_path + ".split.csv"; }

// Errors from the preprocessing do not know the file; name it unless the
// message already starts with it (read_nifti's do).
static std::string with_path(const std::string& path, const char* what) {
  const std::string w = what;
  return w.compare(0, path.size(), path) == 0 ? w : path + ": " + w;
}

PatientSlices prepare_patient(const Patient& p, const PreprocessOptions& pre, int64_t eval_slices) {
  PatientSlices out;
  std::vector<PreprocessedSlice> slices;
  try {
    OrientedVolume vol;
    {
      const NiftiVolume v = read_nifti(p.path);  // freed once oriented: halves the peak memory
      vol = orient_axial(v);
    }
    slices.reserve((size_t)vol.depth);
    for (int64_t z = 0; z < vol.depth; ++z) {
      slices.push_back(preprocess_slice(vol.slice(z), vol.width, vol.height, pre));
      if (slices.back().pixels.size() != (size_t)(pre.size * pre.size))
        throw Error("preprocess_slice returned " + std::to_string(slices.back().pixels.size()) + " pixels for slice " +
                    std::to_string(z) + ", expected " + std::to_string(pre.size * pre.size));
    }
  } catch (const std::exception& e) {
    throw Error(with_path(p.path, e.what()));
  }
  const int64_t usable = std::count_if(slices.begin(), slices.end(), [](const PreprocessedSlice& s) { return s.usable; });
  const SliceChoice choice = choose_slices(slices, eval_slices);
  const auto valid = [&](int64_t z) { return z >= 0 && z < (int64_t)slices.size(); };
  if (!valid(choice.central)) {
    out.skip = "no usable slice (" + std::to_string(slices.size()) + " slices, none with lung/body ≥ " +
               std::to_string(pre.min_lung_fraction) + ")";
    return out;
  }
  auto add = [&](int64_t z, bool in_ten, bool central) {
    CacheRecord r{p.id, p.path, p.split, p.label, p.grade, z, in_ten, central};
    out.records.push_back(r);
    out.pixels.push_back(slices[(size_t)z].pixels);  // a copy: choose_slices may name a slice twice
  };
  if (p.split == Split::train) {
    add(choice.central, false, true);
    return out;
  }
  if ((int64_t)choice.ten.size() < eval_slices || !std::all_of(choice.ten.begin(), choice.ten.end(), valid)) {
    out.skip = std::to_string(usable) + " usable slices, " + std::to_string(choice.ten.size()) + " chosen; " +
               split_name(p.split) + " needs " + std::to_string(eval_slices);
    return out;
  }
  bool central_in_ten = false;
  for (int64_t z : choice.ten) {
    const bool c = z == choice.central;
    central_in_ten |= c;
    add(z, true, c);
  }
  if (!central_in_ten) add(choice.central, false, true);
  return out;
}

PrepReport prep_cache(const PrepOptions& opt, const std::function<void(int64_t, int64_t)>& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  PrepReport rep;
  std::vector<Patient> patients;
  if (!opt.split_csv.empty()) {
    patients = read_split_csv(opt.split_csv);
  } else {
    patients = select_per_class(scan_cohort(opt.data_dir, opt.mapping), opt.per_class, opt.seed, opt.mapping);
    assign_splits(patients, opt.seed);
  }
  rep.patients = (int64_t)patients.size();
  PreprocessOptions pre = opt.pre;
  pre.size = opt.size;
  const int64_t n = rep.patients;
  int workers = opt.workers > 0 ? opt.workers : (int)std::max(1u, std::thread::hardware_concurrency());
  workers = (int)std::min<int64_t>(workers, n);
  rep.workers = workers;

  CacheWriter writer(opt.out, opt.size, opt.dtype);
  // Workers take patients in order; finished ones wait in `done` until the
  // writer (this thread) reaches them. `window` bounds how far workers run
  // ahead of the writer, so memory stays ~window patients of slices.
  std::mutex mu;
  std::condition_variable cv;
  std::map<int64_t, PatientSlices> done;
  int64_t next_patient = 0, written = 0;
  const int64_t window = 2 * (int64_t)workers;
  std::exception_ptr error;
  bool stop = false;
  auto work = [&]() {
    for (;;) {
      int64_t k;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stop || next_patient >= n || next_patient < written + window; });
        if (stop || next_patient >= n) return;
        k = next_patient++;
      }
      try {
        PatientSlices ps = prepare_patient(patients[(size_t)k], pre, opt.eval_slices);
        std::lock_guard<std::mutex> lock(mu);
        done.emplace(k, std::move(ps));
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        stop = true;
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) threads.emplace_back(work);
  auto join = [&]() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    for (auto& t : threads) t.join();
    threads.clear();
  };
  try {
    for (int64_t k = 0; k < n; ++k) {
      PatientSlices ps;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return error || done.count(k); });
        if (error) break;
        ps = std::move(done[k]);
        done.erase(k);
      }
      const Patient& p = patients[(size_t)k];
      if (!ps.skip.empty()) {
        rep.skipped.push_back({p.id, p.split, ps.skip});
      } else {
        for (size_t i = 0; i < ps.records.size(); ++i) writer.add(ps.records[i], ps.pixels[i].data());
        rep.written++;
        rep.records += (int64_t)ps.records.size();
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        written = k + 1;
      }
      cv.notify_all();
      if (progress) progress(k + 1, n);
    }
  } catch (...) {
    join();
    throw;
  }
  join();
  if (error) std::rethrow_exception(error);
  // The split first: a cache (the file users reuse) never exists without it.
  rep.split_csv = split_csv_path(opt.out);
  write_split_csv(rep.split_csv, patients);
  writer.commit();
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace ctg::data
