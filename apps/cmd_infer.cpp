// ctgrad infer: the parity hook with PyTorch. One logit per slice of a NIfTI
// volume, with NO preprocessing and NO reorientation: slice z is the tensor
// [1,1,dim2,dim1] of the scaled voxel values (scl_slope/scl_inter applied) in
// file order — element [0,0,y,x] = voxel (x, y, z). In nibabel terms that is
// torch.from_numpy(img.get_fdata()[:, :, z].T)[None, None]. The net runs in
// eval mode (BatchNorm running statistics, no dropout); logits print as %.9g.
#include <cstdio>

#include "apps/commands.h"
#include "data/nifti.h"
#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "nets/nets.h"

namespace ctg::apps {
namespace {

struct InferArgs {
  std::string net, weights, input, device = "cpu";
  int64_t size = 0;  // 0: the volume's slice side
};

void run_infer(const InferArgs& a) {
  const Device dev = parse_device(a.device);
  const data::NiftiVolume v = data::read_nifti(a.input);
  const bool resnet = a.net == "resnet18";
  // Dense and CNN layer sizes depend on the side S the net was built for: a
  // slice must be S×S. ResNet18 takes any side (its head pools globally).
  int64_t size = a.size;
  if (size > 0 && (v.nx != size || v.ny != size))
    throw Error(a.input + ": slices are " + std::to_string(v.nx) + "x" + std::to_string(v.ny) + " but --size is " +
                std::to_string(size));
  if (size == 0) {
    if (!resnet && v.nx != v.ny)
      throw Error(a.input + ": slices are " + std::to_string(v.nx) + "x" + std::to_string(v.ny) + "; " + a.net +
                  " needs square S×S slices");
    size = resnet ? std::max<int64_t>(std::max(v.nx, v.ny), 32) : v.nx;
  }
  nets::NetOptions opt;
  opt.size = size;
  auto net = nets::make_net(a.net, opt);
  try {
    load_module(a.weights, *net);  // strict: every key, same shapes
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (weights of another net, or of a net built for another --size?)");
  }
  net->eval();
  net->to(dev);

  autograd::NoGradGuard no_grad;
  const int64_t plane = v.nx * v.ny;
  for (int64_t z = 0; z < v.nz; ++z) {
    Tensor x = Tensor::empty({1, 1, v.ny, v.nx});
    std::copy(v.voxels.begin() + z * plane, v.voxels.begin() + (z + 1) * plane, x.data<float>());
    const Tensor y = (*net)(x.to(dev)).to(Device::cpu);
    if (y.numel() != 1) throw Error("infer: " + a.net + " returned " + shape_str(y.shape()) + ", not one logit");
    std::printf("%.9g\n", y.at(0));
  }
}

}  // namespace

static Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "infer",
      "Print one logit per slice of a NIfTI volume (the net in eval mode), with no preprocessing or reorientation: "
      "slice z is [1,1,dim2,dim1] of the scaled voxel values in file order. The parity check against PyTorch "
      "(bench/check_parity.py).");
  auto a = std::make_shared<InferArgs>();
  cmd->add_option("--net", a->net, "dense20|dense50|dense100|dense100x100|cnn1|cnn2|resnet18")->required();
  cmd->add_option("--weights", a->weights, "ctgrad checkpoint (safetensors) for that net")->required();
  cmd->add_option("--input", a->input, "volume (.nii or .nii.gz)")->required();
  cmd->add_option("--device", a->device, "cpu|cuda|auto")->capture_default_str();
  cmd->add_option("--size", a->size, "slice side the net was built for (must equal the volume's; default: the "
                                     "volume's)")->check(CLI::PositiveNumber);
  cmd->callback([a]() { run_infer(*a); });
});

}  // namespace ctg::apps
