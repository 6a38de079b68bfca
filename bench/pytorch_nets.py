#!/usr/bin/env python3
"""Reference PyTorch definitions of the study's networks (SEED_NOTES section 3).

Run with Debian's python (torch 1.13 from python3-torch, torchvision from
python3-torchvision):

    /usr/bin/python3 bench/pytorch_nets.py

which prints the parameter count of every network at size 512 and asserts
they equal the report's Table 1.

State-dict names are fixed: the C++ engine (ctgrad) writes checkpoints with
exactly these names, so they must load with load_state_dict(strict=True).

  dense20/50/100  fc1 = Linear(S*S, h), fc2 = Linear(h, 1)
  dense100x100    fc1 = Linear(S*S, 100), fc2 = Linear(100, 100), fc3 = Linear(100, 1)
  cnn1 / cnn2     conv1, bn1, conv2, bn2, conv3, bn3, fc1, fc2
                  (ReLU and max-pool are functional, so torchsummary sees only
                  conv/bn/linear layers and its pass size matches the study)
  resnet18        torchvision resnet18 body names (conv1, bn1, relu, maxpool,
                  layer1..layer4), 1-channel conv1, head `fc` =
                  Conv2d(512, 1, 1, bias=True) followed by a global max pool;
                  optional Dropout(0.5) before fc (no parameters, so it does
                  not change the state dict).
All networks return one logit per image, shape [N, 1].
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Dense(nn.Module):
    """Dense(h) : S*S -> h -> 1, or Dense(h1, h2): S*S -> h1 -> h2 -> 1."""

    def __init__(self, hidden, hidden2=None, size=512):
        super().__init__()
        self.fc1 = nn.Linear(size * size, hidden)
        if hidden2 is None:
            self.fc2 = nn.Linear(hidden, 1)
            self.fc3 = None
        else:
            self.fc2 = nn.Linear(hidden, hidden2)
            self.fc3 = nn.Linear(hidden2, 1)

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        if self.fc3 is not None:
            x = self.fc3(F.relu(x))
        return x


def _conv_out(n, k=5, stride=1, pad=3):
    return (n + 2 * pad - k) // stride + 1


def cnn_feature_side(size):
    """Spatial side after the three conv(k5,p3; s3,s2,s2)+maxpool2 stages."""
    n = size
    for stride in (3, 2, 2):
        n = _conv_out(n, 5, stride, 3) // 2
    return n


class CNN(nn.Module):
    """3 x [Conv(k5, s3/s2/s2, p3, no bias) -> BN -> ReLU -> MaxPool2] -> FC -> ReLU -> FC."""

    def __init__(self, channels, hidden, size=512):
        super().__init__()
        c1, c2, c3 = channels
        self.conv1 = nn.Conv2d(1, c1, 5, stride=3, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, 5, stride=2, padding=3, bias=False)
        self.bn2 = nn.BatchNorm2d(c2)
        self.conv3 = nn.Conv2d(c2, c3, 5, stride=2, padding=3, bias=False)
        self.bn3 = nn.BatchNorm2d(c3)
        s = cnn_feature_side(size)
        if s < 1:
            raise ValueError("input size %d too small for the CNN" % size)
        self.fc1 = nn.Linear(c3 * s * s, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.max_pool2d(F.relu(self.bn3(self.conv3(x))), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


def CNN1(size=512):
    return CNN((5, 5, 5), 180, size)


def CNN2(size=512):
    return CNN((10, 20, 50), 500, size)


class ResNet18(nn.Module):
    """torchvision ResNet18 body, 1-channel conv1, 1x1 conv head + global max pool."""

    def __init__(self, dropout=False):
        super().__init__()
        import torchvision
        body = torchvision.models.resnet18()
        self.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = body.bn1
        self.relu = body.relu
        self.maxpool = body.maxpool
        self.layer1 = body.layer1
        self.layer2 = body.layer2
        self.layer3 = body.layer3
        self.layer4 = body.layer4
        self.dropout = nn.Dropout(0.5) if dropout else None
        self.fc = nn.Conv2d(512, 1, kernel_size=1, bias=True)
        self.pool = nn.AdaptiveMaxPool2d(1)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        if self.dropout is not None:
            x = self.dropout(x)
        x = self.fc(x)
        x = self.pool(x)
        return torch.flatten(x, 1)


NAMES = ("dense20", "dense50", "dense100", "dense100x100", "cnn1", "cnn2", "resnet18")

EXPECTED_PARAMS = {
    "dense20": 5242921,
    "dense50": 13107301,
    "dense100": 26214601,
    "dense100x100": 26224701,
    "cnn1": 34166,
    "cnn2": 931411,
    "resnet18": 11170753,
}


def build(name, size=512, dropout=False):
    """Build a network by name; `dropout` only affects resnet18."""
    name = name.lower()
    if name == "dense20":
        return Dense(20, size=size)
    if name == "dense50":
        return Dense(50, size=size)
    if name == "dense100":
        return Dense(100, size=size)
    if name == "dense100x100":
        return Dense(100, 100, size=size)
    if name == "cnn1":
        return CNN1(size)
    if name == "cnn2":
        return CNN2(size)
    if name == "resnet18":
        return ResNet18(dropout=dropout)
    raise ValueError("unknown net %r (known: %s)" % (name, ", ".join(NAMES)))


def count_params(model):
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    print("torch %s" % torch.__version__)
    ok = True
    for name in NAMES:
        n = count_params(build(name, 512))
        want = EXPECTED_PARAMS[name]
        print("%-13s %10d  (expected %d)%s" % (name, n, want, "" if n == want else "  MISMATCH"))
        ok = ok and n == want
    for name in NAMES:
        assert count_params(build(name, 512)) == EXPECTED_PARAMS[name], name
    # forward shape check at 512: every net must return one logit per image
    with torch.no_grad():
        for name in NAMES:
            m = build(name, 512).eval()
            y = m(torch.zeros(1, 1, 512, 512))
            assert tuple(y.shape) == (1, 1), (name, tuple(y.shape))
    print("all parameter counts and output shapes OK")
