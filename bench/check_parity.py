#!/usr/bin/env python3
"""Parity of ctgrad checkpoints and inference with PyTorch.

Run with Debian's python (torch 1.13, torchvision, nibabel):

    /usr/bin/python3 bench/check_parity.py --ctgrad build/ctgrad

1. For each net (dense20 at 64, cnn1 and cnn2 at 512, resnet18): `ctgrad init`
   writes a fresh checkpoint; its BatchNorm statistics and affine parameters
   are randomised here (a fresh BN is nearly the identity, which would hide
   mistakes) and written back as safetensors; PyTorch loads it into
   bench/pytorch_nets.py's module with load_state_dict(strict=True); a random
   int16 NIfTI volume with scl_slope/scl_inter is written with nibabel;
   `ctgrad infer` and PyTorch score every slice; the logits must agree within
   1e-4 relative.  Slice z in PyTorch is arr[:, :, z].T as [1, 1, dim2, dim1]
   (nibabel's array is [dim1, dim2, dim3]); resnet18 uses non-square slices so
   a transposition would show.
2. torchvision's resnet18 (random weights, random BN statistics) is saved with
   torch.save(...state_dict()) to a .pth, imported with `ctgrad import
   --conv1 sum`, and `ctgrad infer` is compared with the torchvision body fed
   the grey slice as three equal channels, followed by our head (fc: 1x1 conv
   with the imported weights, then a global max pool).

Prints one line per check with the largest relative difference, and exits
non-zero if any exceeds the tolerance.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_nets  # noqa: E402

ST_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


def read_safetensors(path):
    """{name: numpy array} from a safetensors file (no safetensors package needed)."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        buf = raw[8 + n + begin:8 + n + end]
        out[name] = np.frombuffer(buf, dtype=ST_DTYPES[e["dtype"]]).reshape(e["shape"]).copy()
    return out


def write_safetensors(path, tensors):
    """The format's rules: JSON header padded to 8 bytes, offsets tiling the buffer."""
    names = {np.float32: "F32", np.float64: "F64", np.int64: "I64"}
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": names[a.dtype.type], "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def randomise_bn(sd, rng):
    """Random BN affine parameters and running statistics (var > 0)."""
    for k in list(sd):
        if k.endswith("running_mean") or k.endswith(".bias") and k.replace(".bias", ".running_mean") in sd:
            sd[k] = rng.normal(0, 0.2, sd[k].shape).astype(np.float32)
        elif k.endswith("running_var"):
            sd[k] = rng.uniform(0.5, 2.0, sd[k].shape).astype(np.float32)
        elif k.endswith(".weight") and k.replace(".weight", ".running_var") in sd:
            sd[k] = rng.uniform(0.5, 1.5, sd[k].shape).astype(np.float32)
    return sd


def write_volume(path, shape, rng):
    """Random int16 volume with scaling; returns the decoded array [dim1, dim2, dim3]."""
    raw = rng.integers(-1000, 1000, size=shape).astype(np.int16)
    img = nib.Nifti1Image(raw, np.diag([0.8, 0.8, 2.0, 1.0]))
    img.header.set_data_dtype(np.int16)
    img.header.set_slope_inter(0.002, 0.25)
    nib.save(img, path)
    return nib.load(path).get_fdata()  # raw * slope + inter, as ctgrad decodes it


def slices(arr):
    for z in range(arr.shape[2]):
        yield torch.from_numpy(np.ascontiguousarray(arr[:, :, z].T).astype(np.float32))[None, None]


def ctgrad_infer(exe, net, weights, volume, size=None):
    cmd = [exe, "infer", "--net", net, "--weights", weights, "--input", volume]
    if size:
        cmd += ["--size", str(size)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return np.array([float(x) for x in out.split()])


def rel_diff(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3)))


def check_net(exe, tmp, net, size, shape, rng):
    ckpt, perturbed, vol = (os.path.join(tmp, net + s) for s in (".init.safetensors", ".safetensors", ".nii.gz"))
    subprocess.run([exe, "init", "--net", net, "--size", str(size), "--seed", "7", "--out", ckpt],
                   check=True, capture_output=True)
    sd = randomise_bn(read_safetensors(ckpt), rng)
    write_safetensors(perturbed, sd)
    model = pytorch_nets.build(net, size)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    model.eval()
    arr = write_volume(vol, shape, rng)
    with torch.no_grad():
        ref = np.array([model(x).item() for x in slices(arr)])
    got = ctgrad_infer(exe, net, perturbed, vol, size if net != "resnet18" else None)
    return got, ref


def check_import(exe, tmp, shape, rng):
    tv = torchvision.models.resnet18()
    sd = {k: v.numpy().copy() for k, v in tv.state_dict().items()}
    tv.load_state_dict({k: torch.from_numpy(v) for k, v in randomise_bn(sd, rng).items()})
    pth, imported, vol = (os.path.join(tmp, s) for s in ("tv_resnet18.pth", "imported.safetensors", "rn.nii.gz"))
    torch.save(tv.state_dict(), pth)
    subprocess.run([exe, "import", "--from", pth, "--net", "resnet18", "--conv1", "sum", "--seed", "3",
                    "--out", imported], check=True, capture_output=True)
    head = read_safetensors(imported)
    w, b = torch.from_numpy(head["fc.weight"]), torch.from_numpy(head["fc.bias"])
    tv.eval()
    arr = write_volume(vol, shape, rng)
    ref = []
    with torch.no_grad():
        for x in slices(arr):
            x3 = x.repeat(1, 3, 1, 1)  # the grey slice as three equal channels
            h = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x3))))
            h = tv.layer4(tv.layer3(tv.layer2(tv.layer1(h))))
            ref.append(F.conv2d(h, w, b).amax(dim=(2, 3)).item())
    return ctgrad_infer(exe, "resnet18", imported, vol), np.array(ref)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ctgrad", default="build/ctgrad", help="the ctgrad executable")
    p.add_argument("--slices", type=int, default=3)
    p.add_argument("--tol", type=float, default=1e-4, help="largest relative difference allowed")
    a = p.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(2024)
    exe = os.path.abspath(a.ctgrad)
    cases = [("dense20", 64, (64, 64)), ("cnn1", 512, (512, 512)), ("cnn2", 512, (512, 512)),
             ("resnet18", 0, (96, 80))]
    ok = True
    print("torch %s, torchvision %s, nibabel %s" % (torch.__version__, torchvision.__version__, nib.__version__))
    with tempfile.TemporaryDirectory(prefix="ctgrad_parity_") as tmp:
        results = [("%s (size %s)" % (n, s or "x".join(map(str, sh))), *check_net(exe, tmp, n, s or 512, sh + (a.slices,), rng))
                   for n, s, sh in cases]
        results.append(("resnet18 import --conv1 sum vs torchvision on 3 grey channels",
                        *check_import(exe, tmp, (96, 80, a.slices), rng)))
        for name, got, ref in results:
            d = rel_diff(got, ref)
            ok &= d <= a.tol and len(got) == len(ref)
            print("%-62s slices %d  max rel diff %.3g  %s  (e.g. ctgrad %.9g, torch %.9g)"
                  % (name, len(ref), d, "OK" if d <= a.tol else "FAIL", got[0], ref[0]))
    print("parity OK" if ok else "parity FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
