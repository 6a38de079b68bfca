// ctgrad nifti-info FILE: the header facts and voxel statistics of a NIfTI
// file, as `key: value` lines (easy to grep, and to diff against nibabel).
#include <cstdio>

#include "apps/commands.h"
#include "data/nifti.h"

namespace ctg::apps {

static Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "nifti-info",
      "Print a NIfTI-1/2 file's header (format, byte_order, compression, dim, datatype, pixdim, scl_slope, "
      "scl_inter, qform_code, sform_code) and min, max, mean, sum of its scaled voxel values. For a 4-D file "
      "a `volumes` line gives the number of volumes and the statistics cover the first.");
  auto file = std::make_shared<std::string>();
  cmd->add_option("FILE", *file, ".nii or .nii.gz file (gzip is recognised by its content)")->required();
  cmd->callback([=]() {
    const data::NiftiVolume v = data::read_nifti(*file);
    std::fputs(data::format_nifti_info(v).c_str(), stdout);
  });
});

}  // namespace ctg::apps
